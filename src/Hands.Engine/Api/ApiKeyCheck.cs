using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>Bearer-key check in constant time; no key configured means no auth (the loopback-only default).</summary>
internal sealed class ApiKeyCheck(string? apiKey)
{
    private readonly byte[]? _expected = apiKey is null ? null : Encoding.UTF8.GetBytes(apiKey);

    public bool Required => _expected is not null;

    public bool IsAuthorized(HttpRequest request)
    {
        if (_expected is null)
        {
            return true;
        }

        var header = request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var given = Encoding.UTF8.GetBytes(header[7..].Trim());
        return CryptographicOperations.FixedTimeEquals(given, _expected);
    }
}
