using System.Text.Json.Nodes;
using Hands.Engine.Api;
using Hands.Engine.Runtime;

namespace Hands.Engine.Tests.Rules;

/// <summary>The hardening rules on their own, without containers: which hosts are served, what the seccomp filter allows.</summary>
[Trait("Tier", "Unit")]
public sealed class HardeningRulesTests
{
    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("[::1]", true)]
    [InlineData("localhost", true)]
    [InlineData("sbx123.local", true)]
    [InlineData("8080-sbx123.localhost", true)]
    [InlineData("host.hands.internal", true)]
    [InlineData("sandbox.example.com", true)]
    [InlineData("8080-sbx.sandbox.example.com", true)]
    [InlineData("attacker.example", false)]
    [InlineData("localhost.attacker.example", false)]
    [InlineData("10.0.0.5", false)]
    [InlineData("example.com", false)]
    public void Only_the_engines_own_names_are_served(string host, bool served)
    {
        var filter = new HostHeaderFilter(new Uri("http://127.0.0.1:8900"), new Uri("http://sandbox.example.com:9443"));
        Assert.Equal(served, filter.Allows(host));
    }

    [Fact]
    public void A_server_bound_to_every_address_serves_any_name()
    {
        Assert.True(new HostHeaderFilter(new Uri("http://0.0.0.0:8900")).Allows("attacker.example"));
    }

    [Fact]
    public void The_seccomp_filter_refuses_by_default_and_leaves_out_the_risky_calls()
    {
        var profile = SeccompProfile.Build();
        Assert.Equal("SCMP_ACT_ERRNO", (string?)profile["defaultAction"]);
        var allowed = SeccompProfile.Allowed;
        Assert.Contains("read", allowed);
        Assert.Contains("ptrace", allowed); // gated by ptrace's own checks, as in Docker's profile; sandboxes lack CAP_SYS_PTRACE
        foreach (var risky in new[] { "unshare", "setns", "mount", "keyctl", "add_key", "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "init_module", "kexec_load", "clock_settime", "personality", "clone", "clone3" })
        {
            Assert.DoesNotContain(risky, allowed);
        }

        var rules = profile["syscalls"]!.AsArray().Select(r => r!.AsObject()).ToList();
        var clone = Assert.Single(rules, r => r["names"]!.AsArray().Any(n => (string?)n == "clone"));
        Assert.Equal("SCMP_CMP_MASKED_EQ", (string?)clone["args"]![0]!["op"]);
        Assert.Equal(0x7E020000L, (long)clone["args"]![0]!["value"]!);
        var clone3 = Assert.Single(rules, r => r["names"]!.AsArray().Any(n => (string?)n == "clone3"));
        Assert.Equal(38, (int)clone3["errnoRet"]!);
    }
}
