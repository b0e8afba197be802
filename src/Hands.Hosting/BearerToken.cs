using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Hands.Hosting;

/// <summary>The credential of an <c>Authorization: Bearer</c> header, and the constant-time check every server makes of it.</summary>
public static class BearerToken
{
    private const string Scheme = "Bearer ";

    /// <summary>The trimmed token of <c>Authorization: Bearer TOKEN</c> (scheme in any case); null when absent or another scheme.</summary>
    public static string? Of(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase) ? header[Scheme.Length..].Trim() : null;
    }

    /// <summary>
    /// Whether <paramref name="given"/> is the secret whose UTF-8 bytes are <paramref name="expected"/>, in a time that
    /// does not depend on where they differ, so a caller cannot guess the secret a byte at a time.
    /// </summary>
    public static bool Matches(string? given, ReadOnlySpan<byte> expected) =>
        given is not null && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), expected);
}
