using System.Text;
using Microsoft.AspNetCore.Http;
using StandardWebhooks;
using StandardWebhooks.Diagnostics;

namespace Hands.Webhooks;

/// <summary>
/// Verifies a delivery over the raw request bytes: required headers present, timestamp within five minutes, and a
/// matching <c>v1</c> signature (constant-time). Failures throw <see cref="WebhookVerificationFailedException"/>
/// whose message never contains the secret or the expected signature.
/// </summary>
public sealed class WebhookVerifier
{
    private readonly StandardWebhook _webhook;

    /// <summary>Creates a verifier for a <c>whsec_</c> secret.</summary>
    public WebhookVerifier(string secret)
    {
        if (!WebhookSecret.IsWellFormed(secret))
        {
            throw new ArgumentException("A webhook signing secret is 'whsec_' followed by base64 of at least 24 bytes.", nameof(secret));
        }

        _webhook = new StandardWebhook(secret);
    }

    /// <summary>Verifies <paramref name="rawBody"/> against the delivery's headers.</summary>
    public void Verify(ReadOnlySpan<byte> rawBody, IHeaderDictionary headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        string body;
        try
        {
            body = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(rawBody);
        }
        catch (DecoderFallbackException)
        {
            throw new WebhookVerificationFailedException("body is not valid UTF-8");
        }

        try
        {
            _webhook.Verify(body, headers);
        }
        catch (WebhookVerificationException ex)
        {
            throw new WebhookVerificationFailedException(ex.Message);
        }
    }

    /// <summary>True when the delivery verifies.</summary>
    public bool TryVerify(ReadOnlySpan<byte> rawBody, IHeaderDictionary headers, out string? reason)
    {
        try
        {
            Verify(rawBody, headers);
            reason = null;
            return true;
        }
        catch (WebhookVerificationFailedException ex)
        {
            reason = ex.Message;
            return false;
        }
    }
}

/// <summary>A webhook delivery did not verify. The message says why (missing header, stale timestamp, bad signature).</summary>
public sealed class WebhookVerificationFailedException : Exception
{
    public WebhookVerificationFailedException() { }

    public WebhookVerificationFailedException(string message) : base(message) { }

    public WebhookVerificationFailedException(string message, Exception innerException) : base(message, innerException) { }
}
