using System.Security.Cryptography;
using System.Text;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>Resource ids (<c>sesn_01...</c>), secrets and their hashes.</summary>
public static class Ids
{
    private const string Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghijkmnopqrstuvwxyz";

    /// <summary>A new id with the given prefix, e.g. <c>New("sesn")</c> = <c>sesn_01</c> + 22 random characters.</summary>
    public static string New(string prefix) => prefix + "_01" + Random(22);

    /// <summary>A random string of <paramref name="length"/> characters from a URL-safe alphabet.</summary>
    public static string Random(int length)
    {
        Span<byte> bytes = stackalloc byte[length];
        RandomNumberGenerator.Fill(bytes);
        var sb = new StringBuilder(length);
        foreach (var b in bytes)
        {
            sb.Append(Alphabet[b % Alphabet.Length]);
        }

        return sb.ToString();
    }

    /// <summary>A new secret token with the given prefix (e.g. <c>sk-ant-oat01-</c>); 256 bits of entropy.</summary>
    public static string Secret(string prefix) =>
        prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>SHA-256 hex of a secret; secrets are high-entropy, so a fast hash is enough to store them safely.</summary>
    public static string Hash(string secret) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
}
