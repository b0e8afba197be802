using System.Security.Cryptography;

namespace Hands.Webhooks;

/// <summary>Webhook signing secrets: 32 random bytes, base64, prefixed <c>whsec_</c> (as Anthropic's Console shows them).</summary>
public static class WebhookSecret
{
    /// <summary>The prefix every signing secret carries.</summary>
    public const string Prefix = "whsec_";

    /// <summary>A new random secret.</summary>
    public static string Generate() => Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    /// <summary>True when <paramref name="secret"/> is <c>whsec_</c> followed by valid base64 of at least 24 bytes.</summary>
    public static bool IsWellFormed(string? secret)
    {
        if (secret is null || !secret.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var buffer = new byte[secret.Length];
        return Convert.TryFromBase64String(secret[Prefix.Length..], buffer, out var written) && written >= 24;
    }
}
