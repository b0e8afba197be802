using System.Buffers.Text;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol;

/// <summary>
/// Encodes and decodes the work item's <c>secret</c>: base64url (padding optional) of JSON
/// <c>{"sessions_token":"sk-ant-req-...","api_base_url"?:...}</c>. Decoding never throws and never logs the value.
/// </summary>
public static class WorkSecretCodec
{
    /// <summary>Returns the decoded secret, or null when it is missing or malformed.</summary>
    public static WorkSecret? TryDecode(string? secret)
    {
        if (string.IsNullOrWhiteSpace(secret))
        {
            return null;
        }

        try
        {
            var trimmed = secret.Trim().TrimEnd('=').Replace('+', '-').Replace('/', '_');
            var bytes = Base64Url.DecodeFromChars(trimmed);
            var decoded = JsonSerializer.Deserialize(bytes, ProtocolJsonContext.Default.WorkSecret);
            return decoded is { SessionsToken.Length: > 0 } ? decoded : null;
        }
        catch (Exception ex) when (ex is FormatException or JsonException or ArgumentException)
        {
            return null;
        }
    }

    /// <summary>Encodes a secret as the service does (unpadded base64url).</summary>
    public static string Encode(WorkSecret secret) =>
        Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(secret, ProtocolJsonContext.Default.WorkSecret));
}
