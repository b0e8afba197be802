using System.Security.Cryptography;
using System.Text;
using Hands.Webhooks;
using Microsoft.AspNetCore.Http;

namespace Hands.Protocol.Tests;

/// <summary>Standard Webhooks: HMAC-SHA256 over "{id}.{timestamp}.{raw body}", key = base64 after "whsec_", ±5 minutes.</summary>
[Trait("Tier", "Unit")]
public sealed class WebhookSignatureTests
{
    private static readonly string Secret = "whsec_" + Convert.ToBase64String(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray());

    private static HeaderDictionary Headers(IReadOnlyDictionary<string, string> h) => new(h.ToDictionary(p => p.Key, p => new Microsoft.Extensions.Primitives.StringValues(p.Value)));

    [Fact]
    public void Signature_matches_an_independent_hmac_computation()
    {
        var body = Encoding.UTF8.GetBytes("""{"type":"event","id":"whe_1","data":{"type":"session.status_run_started","id":"sesn_1"}}""");
        var ts = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        var headers = new WebhookSigner(Secret).Headers("whe_1", ts, body);
        using var hmac = new HMACSHA256(Convert.FromBase64String(Secret["whsec_".Length..]));
        var expected = "v1," + Convert.ToBase64String(hmac.ComputeHash(Encoding.UTF8.GetBytes($"whe_1.1800000000.{Encoding.UTF8.GetString(body)}")));
        Assert.Equal(expected, headers["webhook-signature"]);
        Assert.Equal("1800000000", headers["webhook-timestamp"]);
    }

    [Fact]
    public void Verifier_accepts_fresh_signed_deliveries_and_rejects_tampering_staleness_and_missing_headers()
    {
        var body = Encoding.UTF8.GetBytes("""{"type":"event","id":"whe_2"}""");
        var signer = new WebhookSigner(Secret);
        var verifier = new WebhookVerifier(Secret);
        var fresh = signer.Headers("whe_2", DateTimeOffset.UtcNow, body);
        verifier.Verify(body, Headers(fresh));

        var tampered = (byte[])body.Clone();
        tampered[^2] ^= 1;
        Assert.Throws<WebhookVerificationFailedException>(() => verifier.Verify(tampered, Headers(fresh)));

        var stale = signer.Headers("whe_2", DateTimeOffset.UtcNow.AddMinutes(-6), body);
        Assert.Throws<WebhookVerificationFailedException>(() => verifier.Verify(body, Headers(stale)));
        var future = signer.Headers("whe_2", DateTimeOffset.UtcNow.AddMinutes(6), body);
        Assert.Throws<WebhookVerificationFailedException>(() => verifier.Verify(body, Headers(future)));

        var missing = fresh.Where(p => p.Key != "webhook-signature").ToDictionary();
        Assert.Throws<WebhookVerificationFailedException>(() => verifier.Verify(body, Headers(missing)));

        var otherKey = new WebhookVerifier(WebhookSecret.Generate());
        var ex = Assert.Throws<WebhookVerificationFailedException>(() => otherKey.Verify(body, Headers(fresh)));
        Assert.DoesNotContain(Secret["whsec_".Length..], ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Any_matching_v1_entry_in_a_space_separated_list_is_accepted()
    {
        var body = Encoding.UTF8.GetBytes("{}");
        var headers = new WebhookSigner(Secret).Headers("whe_3", DateTimeOffset.UtcNow, body).ToDictionary();
        headers["webhook-signature"] = "v2,AAAA v1,bm9wZQ== " + headers["webhook-signature"];
        new WebhookVerifier(Secret).Verify(body, Headers(headers));
    }

    [Theory]
    [InlineData("")]
    [InlineData("secret")]
    [InlineData("whsec_")]
    [InlineData("whsec_c2hvcnQ=")]
    public void Malformed_secrets_are_refused(string secret)
    {
        Assert.False(WebhookSecret.IsWellFormed(secret));
        Assert.Throws<ArgumentException>(() => new WebhookSigner(secret));
    }
}
