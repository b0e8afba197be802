using System.Text;
using StandardWebhooks;

namespace Hands.Webhooks;

/// <summary>
/// Signs webhook deliveries with the Standard Webhooks scheme: <c>v1,base64(HMAC-SHA256(key, "{id}.{ts}.{body}"))</c>,
/// where the key is the base64 part of the <c>whsec_</c> secret.
/// </summary>
public sealed class WebhookSigner
{
    private readonly StandardWebhook _webhook;

    /// <summary>Creates a signer for a <c>whsec_</c> secret.</summary>
    public WebhookSigner(string secret)
    {
        if (!WebhookSecret.IsWellFormed(secret))
        {
            throw new ArgumentException("A webhook signing secret is 'whsec_' followed by base64 of at least 24 bytes.", nameof(secret));
        }

        _webhook = new StandardWebhook(secret);
    }

    /// <summary>The <c>webhook-id</c>, <c>webhook-timestamp</c> and <c>webhook-signature</c> headers for one attempt.</summary>
    public IReadOnlyDictionary<string, string> Headers(string messageId, DateTimeOffset timestamp, byte[] body)
    {
        var signature = _webhook.Sign(messageId, timestamp, Encoding.UTF8.GetString(body));
        return new Dictionary<string, string>
        {
            ["webhook-id"] = messageId,
            ["webhook-timestamp"] = timestamp.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["webhook-signature"] = signature,
        };
    }
}
