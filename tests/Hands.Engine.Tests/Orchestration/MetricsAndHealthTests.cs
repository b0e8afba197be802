using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Hands.Orchestrator;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// The engine's and the orchestrator's /metrics (Prometheus text) and health endpoints, scraped over loopback while a
/// real session runs: each measurement asserted is the change one known action made (the process's instruments are
/// shared by every test in it).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class MetricsAndHealthTests(EngineFixture engine)
{
    private static readonly HttpClient Http = new();

    [Fact]
    public async Task The_engine_answers_liveness_and_readiness_without_a_key_and_metrics_only_with_it()
    {
        using (var live = await Http.GetAsync(new Uri(engine.Engine.ApiAddress, "/livez")))
        {
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
        }

        using (var ready = await Http.GetAsync(new Uri(engine.Engine.ApiAddress, "/readyz")))
        {
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
            using var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
            var checks = body.RootElement.GetProperty("checks");
            Assert.True(checks.GetProperty("runtime").GetProperty("ok").GetBoolean());
            Assert.True(checks.GetProperty("volume").GetProperty("ok").GetBoolean());
            Assert.True(checks.GetProperty("disk").GetProperty("ok").GetBoolean());
            Assert.True(checks.GetProperty("disk").GetProperty("free_bytes").GetInt64() >= checks.GetProperty("disk").GetProperty("reserve_bytes").GetInt64());
            Assert.Equal(engine.Engine.CriuAvailable, checks.GetProperty("criu").GetProperty("ok").GetBoolean());
        }

        using (var anonymous = await Http.GetAsync(new Uri(engine.Engine.ApiAddress, "/metrics")))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        }

        var before = await EngineMetricsAsync();
        // A refusal counts as an API error by code and route.
        await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.GetAsync("no-such-sandbox-" + Guid.NewGuid().ToString("N")[..6]));
        var after = await EngineMetricsAsync();
        const string notFound = "hands_engine_api_errors_total{http_response_status_code=\"404\",http_route=\"/v1/namespaces/{ns}/sandboxes/{id}\"}";
        Assert.Equal(Value(before, notFound) + 1, Value(after, notFound));
        Assert.Contains("# TYPE hands_engine_sandboxes gauge", after.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_session_moves_the_spawn_hand_off_create_and_wake_measurements_and_the_orchestrator_reports_them()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var options = cp.Options();
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, options);
        await using var status = await OrchestratorStatusServer.StartAsync(new Uri("http://127.0.0.1:0"), orchestrator, cp.EnvironmentClient, engine.Client, options);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        var orchestratorBefore = await ScrapeAsync(new Uri(status.Address, "/metrics"));
        var engineBefore = await EngineMetricsAsync();
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
            await orchestrator.WhenIdleAsync();
            // Freeze and wake the session's sandbox: one suspend and one resume of the freeze tier.
            await engine.Client.SuspendAsync(name);
            await engine.Client.WaitForStatusAsync(name, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30));
            var frozen = await EngineMetricsAsync();
            Assert.True(Value(frozen, "hands_engine_sandboxes{hands_pool_warm=\"false\",hands_sandbox_state=\"frozen\"}") >= 1);
            await engine.Client.ResumeAsync(name);
            await engine.Client.WaitForStatusAsync(name, [SandboxStatus.Running], TimeSpan.FromSeconds(30));
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
        }

        var orchestratorAfter = await ScrapeAsync(new Uri(status.Address, "/metrics"));
        var engineAfter = await EngineMetricsAsync();
        await engine.DeleteQuietlyAsync(name);

        const string handedOff = "hands_orchestrator_lease_hand_offs_total{hands_outcome=\"handed_off\"}";
        Assert.Equal(Value(orchestratorBefore, handedOff) + 1, Value(orchestratorAfter, handedOff));
        const string spawned = "hands_orchestrator_spawn_duration_seconds_count{hands_outcome=\"ok\",hands_sandbox_acquisition=\"created\"}";
        Assert.Equal(Value(orchestratorBefore, spawned) + 1, Value(orchestratorAfter, spawned));
        Assert.Equal(0, Value(orchestratorAfter, "hands_orchestrator_spawns_in_flight"));
        Assert.True(orchestratorAfter.Values.ContainsKey("hands_work_queue_depth"));
        Assert.True(orchestratorAfter.Values.ContainsKey("hands_work_queue_pending"));
        const string created = "hands_engine_operation_duration_seconds_count{hands_operation=\"create\",hands_outcome=\"ok\"}";
        Assert.Equal(Value(engineBefore, created) + 1, Value(engineAfter, created));
        const string froze = "hands_engine_operation_duration_seconds_count{hands_operation=\"suspend\",hands_outcome=\"ok\",hands_sandbox_suspend_tier=\"freeze\"}";
        Assert.Equal(Value(engineBefore, froze) + 1, Value(engineAfter, froze));
        const string woke = "hands_engine_operation_duration_seconds_count{hands_operation=\"resume\",hands_outcome=\"ok\",hands_sandbox_suspend_tier=\"freeze\"}";
        Assert.Equal(Value(engineBefore, woke) + 1, Value(engineAfter, woke));
        // The wake's histogram is cumulative: its +Inf bucket is its count.
        Assert.Equal(Value(engineAfter, woke),
            Value(engineAfter, "hands_engine_operation_duration_seconds_bucket{hands_operation=\"resume\",hands_outcome=\"ok\",hands_sandbox_suspend_tier=\"freeze\",le=\"+Inf\"}"));
        foreach (var secret in new[] { LocalControlPlane.ApiKey, cp.EnvironmentKey, EngineFixture.ApiKey })
        {
            Assert.DoesNotContain(secret, orchestratorAfter.Text + engineAfter.Text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_orchestrator_is_ready_only_when_its_queue_and_provider_answer()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var options = cp.Options();
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, options);
        await using (var status = await OrchestratorStatusServer.StartAsync(new Uri("http://127.0.0.1:0"), orchestrator, cp.EnvironmentClient, engine.Client, options))
        {
            using var live = await Http.GetAsync(new Uri(status.Address, "/livez"));
            Assert.Equal(HttpStatusCode.OK, live.StatusCode);
            using var ready = await Http.GetAsync(new Uri(status.Address, "/readyz"));
            Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        }

        // A provider nobody answers at (a port just freed on loopback): not ready, and the check names it.
        using var nowhere = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri($"http://127.0.0.1:{EngineFixture.FreePort()}"), ApiKey = EngineFixture.ApiKey, MaxRetries = 0 });
        await using (var status = await OrchestratorStatusServer.StartAsync(new Uri("http://127.0.0.1:0"), orchestrator, cp.EnvironmentClient, nowhere, options))
        {
            using var ready = await Http.GetAsync(new Uri(status.Address, "/readyz"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            using var body = JsonDocument.Parse(await ready.Content.ReadAsStringAsync());
            Assert.True(body.RootElement.GetProperty("checks").GetProperty("queue").GetProperty("ok").GetBoolean());
            Assert.False(body.RootElement.GetProperty("checks").GetProperty("provider").GetProperty("ok").GetBoolean());
            Assert.DoesNotContain(EngineFixture.ApiKey, body.RootElement.ToString(), StringComparison.Ordinal);
        }
    }

    private async Task<Scrape> EngineMetricsAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(engine.Engine.ApiAddress, "/metrics"));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", EngineFixture.ApiKey);
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", response.Content.Headers.ContentType!.ToString(), StringComparison.Ordinal);
        return Scrape.Parse(await response.Content.ReadAsStringAsync());
    }

    private static async Task<Scrape> ScrapeAsync(Uri url)
    {
        using var response = await Http.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return Scrape.Parse(await response.Content.ReadAsStringAsync());
    }

    private static double Value(Scrape scrape, string series) => scrape.Values.GetValueOrDefault(series);

    /// <summary>A Prometheus text page: each sample line's series (name and labels, as written) to its value.</summary>
    private sealed record Scrape(string Text, Dictionary<string, double> Values)
    {
        public static Scrape Parse(string text)
        {
            var values = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                if (line.StartsWith('#'))
                {
                    continue;
                }

                var space = line.LastIndexOf(' ');
                values[line[..space]] = line[(space + 1)..] == "+Inf" ? double.PositiveInfinity : double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
            }

            return new Scrape(text, values);
        }
    }
}
