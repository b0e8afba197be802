using System.Security.Cryptography;

namespace Hands.Engine.Api;

/// <summary>
/// The engine's key when the operator gives none: made on first start, kept in <c>{data}/api-key</c> (mode 0600 in
/// a 0700 directory, so only root reads it) and reused on every start. An engine is never open without a key unless
/// the operator opts out (<see cref="EngineOptions.AllowAnonymous"/>).
/// </summary>
public static class EngineApiKeyFile
{
    /// <summary>The file's name under the data directory.</summary>
    public const string FileName = "api-key";

    /// <summary>Where the key of the engine using <paramref name="dataDirectory"/> is kept.</summary>
    public static string PathIn(string dataDirectory) => Path.Combine(dataDirectory, FileName);

    /// <summary>The key stored under <paramref name="dataDirectory"/>, or null when there is none or it cannot be read.</summary>
    public static string? TryRead(string dataDirectory)
    {
        try
        {
            var key = File.ReadAllText(PathIn(dataDirectory)).Trim();
            return key.Length >= 32 ? key : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The stored key, made (and written atomically, owner-only) when there is none.</summary>
    internal static string LoadOrCreate(string dataDirectory)
    {
        if (TryRead(dataDirectory) is { } existing)
        {
            return existing;
        }

        var key = "tl_apiKey_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));
        SecretFile.WriteAtomically(PathIn(dataDirectory), System.Text.Encoding.ASCII.GetBytes(key + "\n"));
        return key;
    }
}
