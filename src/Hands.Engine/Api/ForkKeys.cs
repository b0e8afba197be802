using System.Security.Cryptography;
using System.Text;

namespace Hands.Engine.Api;

/// <summary>
/// Engine extension: keys that may fork one sandbox and nothing else (<c>hfk_{sandbox}_{mac}</c>). A key is an HMAC of
/// the sandbox id under a secret kept in the engine's data directory (mode 0600), so keys survive an engine restart and
/// die with their sandbox: ids are never reused. What a key allows is decided by <see cref="ForkScope"/>.
/// </summary>
internal sealed class ForkKeys
{
    private const string Prefix = "hfk_";
    private const int SecretBytes = 32;
    private readonly byte[] _secret;

    public ForkKeys(string dataDirectory)
    {
        var file = Path.Combine(dataDirectory, "fork-keys.secret");
        _secret = File.Exists(file) ? File.ReadAllBytes(file) : [];
        if (_secret.Length != SecretBytes)
        {
            // Missing, or cut short by a crash: a short secret would make keys guessable, so start over (old keys die).
            _secret = RandomNumberGenerator.GetBytes(SecretBytes);
            SecretFile.WriteAtomically(file, _secret);
        }
    }

    /// <summary>The key scoped to <paramref name="sandboxId"/>.</summary>
    public string Issue(string sandboxId) => $"{Prefix}{sandboxId}_{Mac(sandboxId)}";

    /// <summary>The sandbox a well-formed, genuine key is scoped to; null for anything else.</summary>
    public string? ScopeOf(string token)
    {
        if (!token.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return null;
        }

        var rest = token[Prefix.Length..];
        var split = rest.LastIndexOf('_');
        if (split <= 0)
        {
            return null;
        }

        var sandboxId = rest[..split];
        var expected = Encoding.ASCII.GetBytes(Mac(sandboxId));
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(rest[(split + 1)..]), expected) ? sandboxId : null;
    }

    private string Mac(string sandboxId) =>
        Convert.ToHexStringLower(HMACSHA256.HashData(_secret, Encoding.UTF8.GetBytes("fork:" + sandboxId)))[..40];
}
