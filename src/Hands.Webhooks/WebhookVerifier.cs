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

        // StandardWebhooks 1.1.2 rejects a signature header that lists several entries (key rotation sends
        // "v1,old v1,new") unless the first one matches; the scheme accepts any matching v1 entry. So each entry is
        // verified on its own, and the library still does the timestamp and constant-time HMAC checks.
        var entries = headers["webhook-signature"].ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (entries.Length <= 1)
        {
            VerifyOne(body, headers);
            return;
        }

        string? lastError = null;
        foreach (var entry in entries)
        {
            var single = new HeaderDictionary(headers.ToDictionary(h => h.Key, h => h.Value, StringComparer.OrdinalIgnoreCase))
            {
                ["webhook-signature"] = entry,
            };
            try
            {
                VerifyOne(body, single);
                return;
            }
            catch (WebhookVerificationFailedException ex)
            {
                lastError = ex.Message;
            }
        }

        throw new WebhookVerificationFailedException(lastError ?? "No matching signature found");
    }

    private void VerifyOne(string body, IHeaderDictionary headers)
    {
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
