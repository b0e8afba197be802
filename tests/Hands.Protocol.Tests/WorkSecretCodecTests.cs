using System.Text;
using Hands.Protocol.Models;

namespace Hands.Protocol.Tests;

[Trait("Tier", "Unit")]
public sealed class WorkSecretCodecTests
{
    [Fact]
    public void Round_trips_unpadded_base64url()
    {
        var encoded = WorkSecretCodec.Encode(new WorkSecret { SessionsToken = "sk-ant-req-abc", ApiBaseUrl = "http://127.0.0.1:1" });
        Assert.DoesNotContain("=", encoded, StringComparison.Ordinal);
        var decoded = WorkSecretCodec.TryDecode(encoded);
        Assert.Equal("sk-ant-req-abc", decoded!.SessionsToken);
        Assert.Equal("http://127.0.0.1:1", decoded.ApiBaseUrl);
    }

    [Fact]
    public void Accepts_padded_and_standard_alphabet_and_ignores_unknown_fields()
    {
        var json = """{"sessions_token":"tok>>??","extra":1}""";
        var standard = Convert.ToBase64String(Encoding.UTF8.GetBytes(json));
        Assert.Equal("tok>>??", WorkSecretCodec.TryDecode(standard)!.SessionsToken);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("%%%not-base64")]
    [InlineData("bm90IGpzb24")] // "not json"
    [InlineData("eyJzZXNzaW9uc190b2tlbiI6IiJ9")] // {"sessions_token":""}
    public void Malformed_or_empty_secrets_decode_to_null(string? secret) => Assert.Null(WorkSecretCodec.TryDecode(secret));
}
