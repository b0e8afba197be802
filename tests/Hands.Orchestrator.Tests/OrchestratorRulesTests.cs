using Hands.Orchestrator;

namespace Hands.Orchestrator.Tests;

/// <summary>The orchestrator's rules that need no servers.</summary>
[Trait("Tier", "Unit")]
public sealed class OrchestratorRulesTests
{
    [Theory]
    [InlineData("sesn_01H2ZZabc", "agent-sesn-01h2zzabc")]
    [InlineData("A.b/C-d", "agent-a-b-c-d")]
    public void Session_sandbox_names_are_slugs(string session, string expected) => Assert.Equal(expected, SandboxNames.ForSession(session));

    [Fact]
    public void Loopback_urls_become_the_hosts_name_inside_a_sandbox()
    {
        Assert.Equal(new Uri("http://host.hands.internal:8787/"), WorkerUrls.FromHost(new Uri("http://127.0.0.1:8787")));
        Assert.Equal(new Uri("https://api.anthropic.com/"), WorkerUrls.FromHost(new Uri("https://api.anthropic.com")));
    }

    [Fact]
    public void A_second_orchestrator_for_the_environment_is_refused_naming_the_holder()
    {
        var path = Path.Combine(Path.GetTempPath(), $"hands-lock-test-{Guid.NewGuid():N}.lock");
        using (OrchestratorLock.Acquire("env_1", "poll", path))
        {
            var refused = Assert.Throws<OrchestratorException>(() => OrchestratorLock.Acquire("env_1", "webhook", path));
            Assert.Contains($"pid {Environment.ProcessId}, mode poll", refused.Message, StringComparison.Ordinal);
        }

        using (OrchestratorLock.Acquire("env_1", "webhook", path))
        {
            // Released by the first holder: the next one gets it.
        }

        File.Delete(path);
    }

    [Fact]
    public void Backoff_doubles_to_a_minute_with_at_most_a_quarter_of_jitter()
    {
        for (var failures = 1; failures <= 10; failures++)
        {
            var delay = WorkQueueOrchestrator.Backoff(failures).TotalSeconds;
            var ceiling = Math.Min(60, Math.Pow(2, failures - 1));
            Assert.InRange(delay, ceiling * 0.75, ceiling);
        }
    }
}
