using System.Collections.Concurrent;
using System.Text;
using Hands.Orchestrator;
using Hands.Protocol.Models;
using Hands.Sandboxes.Models;
using Hands.Webhooks;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// The orchestrator on the real local stack: a control plane on loopback, this collection's engine, and hands-worker
/// running inside each session's sandbox, reaching the control plane as host.hands.internal.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class OrchestratorEndToEndTests(EngineFixture engine)
{
    private const string TwoTurns = """
        {"turns":[
          {"steps":[{"tool":"bash","input":{"command":"echo one > turn1.txt && echo written"}},{"message":"wrote it"}]},
          {"steps":[{"tool":"bash","input":{"command":"test -f turn1.txt && echo present || echo absent"}},{"message":"checked"}]}
        ]}
        """;

    [Fact]
    public async Task Polling_runs_the_session_in_its_own_sandbox_to_end_turn()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "Create hello.txt containing 'hi from the sandbox', then read it back."));
            var sandbox = await engine.Client.GetAsync(name);
            Assert.Equal(SandboxStatus.Running, sandbox.Status);
            // The file is in the session's sandbox, not on this host.
            Assert.Equal("hi from the sandbox", Encoding.UTF8.GetString(await engine.Client.Proxy(sandbox).ReadFileAsync("/workspace/hello.txt")));
            Assert.Contains("hi from the sandbox", await cp.ToolResultsAsync(session));
            await orchestrator.WhenIdleAsync(); // the hand-off is seen on the renewal after the worker's first heartbeat
            Assert.Equal(1, orchestrator.SpawnedCount);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(name);
        }
    }

    [Fact]
    public async Task Webhook_deliveries_drain_the_queue_and_other_types_are_ignored()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var port = EngineFixture.FreePort();
        var endpoint = await cp.Client.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest
        {
            Url = $"http://127.0.0.1:{port}/",
            EventTypes = ["session.status_run_started", "session.status_idled"],
        });
        var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
        await using var receiver = await WebhookReceiver.StartAsync(orchestrator, new WebhookReceiverOptions
        {
            Url = new Uri($"http://127.0.0.1:{port}"),
            SigningKey = endpoint.Secret!,
            FallbackDrainInterval = TimeSpan.FromHours(1),
        });
        var session = await cp.CreateSessionAsync();
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
            Assert.Contains("hi from the sandbox", await cp.ToolResultsAsync(session));
            Assert.True(receiver.Deliveries >= 1);
            await orchestrator.WhenIdleAsync(); // the hand-off is seen on the renewal after the worker's first heartbeat
            Assert.Equal(1, orchestrator.SpawnedCount);
        }
        finally
        {
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }

    [Fact]
    public async Task Duplicate_deliveries_and_concurrent_drains_spawn_one_sandbox()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var port = EngineFixture.FreePort();
        const string secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
        var outcomes = new ConcurrentBag<SpawnOutcome>();
        orchestrator.Spawned += outcomes.Add;
        await using var receiver = await WebhookReceiver.StartAsync(orchestrator, new WebhookReceiverOptions
        {
            Url = new Uri($"http://127.0.0.1:{port}"),
            SigningKey = secret,
            FallbackDrainInterval = TimeSpan.FromHours(1),
        });
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            var body = Encoding.UTF8.GetBytes($$$"""{"type":"event","id":"whe_dup","created_at":"2026-11-26T00:00:00Z","data":{"type":"session.status_run_started","id":"{{{session}}}"}}""");
            using var http = new HttpClient();
            var deliveries = Enumerable.Range(0, 3).Select(async _ =>
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/") { Content = new ByteArrayContent(body) };
                foreach (var (header, value) in new WebhookSigner(secret).Headers("whe_dup", DateTimeOffset.UtcNow, body))
                {
                    request.Headers.TryAddWithoutValidation(header, value);
                }

                using var response = await http.SendAsync(request);
                return (int)response.StatusCode;
            });
            var drains = Enumerable.Range(0, 3).Select(_ => orchestrator.DrainAsync(CancellationToken.None));
            Assert.All(await Task.WhenAll(deliveries), status => Assert.Equal(200, status));
            await Task.WhenAll(drains);
            // Whichever drain won (a delivery's or a direct one) spawns in the background: wait for it, bounded.
            for (var i = 0; i < 240 && outcomes.IsEmpty; i++)
            {
                await Task.Delay(250);
            }

            await orchestrator.WhenIdleAsync();
            await orchestrator.DrainAsync(CancellationToken.None);
            Assert.Single(outcomes);
            var same = new List<SandboxInfo>();
            await foreach (var s in engine.Client.ListAllAsync())
            {
                if (s.Name == name && s.Status != SandboxStatus.Terminated)
                {
                    same.Add(s);
                }
            }

            Assert.Single(same);
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
        }
        finally
        {
            await engine.DeleteQuietlyAsync(name);
        }
    }

    [Theory]
    [InlineData(false, "absent", SandboxAcquisition.Recreated)]
    [InlineData(true, "present", SandboxAcquisition.Resumed)]
    public async Task Resume_policy_decides_whether_a_suspended_sessions_files_survive(bool resume, string expected, SandboxAcquisition how)
    {
        await using var cp = await LocalControlPlane.StartAsync(engine, "two-turns", TwoTurns);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o =>
        {
            o.Resume = resume;
            o.WorkerMaxIdle = TimeSpan.FromSeconds(1);
        }));
        var outcomes = new ConcurrentQueue<SpawnOutcome>();
        orchestrator.Spawned += outcomes.Enqueue;
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "first"));
            Assert.Contains("written", await cp.ToolResultsAsync(session));
            await WaitForNoWorkerAsync(name);
            // What the provider does to an idle session sandbox at its timeout.
            await engine.Client.SuspendAsync(name);
            await engine.Client.WaitForStatusAsync(name, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30));
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "second"));
            Assert.Equal(expected, (await cp.ToolResultsAsync(session))[^1].Trim());
            await orchestrator.WhenIdleAsync();
            Assert.Equal(how, outcomes.Last().How);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(name);
        }
    }

    [Fact]
    public async Task A_failed_spawn_is_reported_and_the_item_released_for_another_try()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            await using (var broken = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o => o.Image = "no-such-image")))
            {
                var summary = await broken.DrainAsync(CancellationToken.None);
                var failed = Assert.Single(summary.Outcomes);
                Assert.False(failed.Succeeded);
                Assert.Contains("no-such-image", failed.Detail, StringComparison.Ordinal);
            }

            // Released: the lease lapses within a second or two and the item is queued again, not lost.
            var deadline = DateTimeOffset.UtcNow.AddSeconds(20);
            WorkItem item;
            do
            {
                await Task.Delay(250);
                item = (await cp.EnvironmentClient.Work.ListAsync(cp.EnvironmentId)).Data.Single();
            }
            while (item.State != WorkState.Queued && DateTimeOffset.UtcNow < deadline);
            Assert.Equal(WorkState.Queued, item.State);

            await using var working = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
            using var stop = new CancellationTokenSource();
            var polling = working.RunPollingAsync(999, stop.Token);
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
            await stop.CancelAsync();
            await polling;
        }
        finally
        {
            await engine.DeleteQuietlyAsync(name);
        }
    }

    [Fact]
    public async Task A_worker_left_from_an_earlier_claim_of_the_item_is_stopped_and_replaced()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            // What an earlier claim of this item leaves when its lease lapsed: the session's sandbox, and a process
            // under the item's worker name whose secret was handed over long ago (stdin closed), its token revoked.
            var item = (await cp.EnvironmentClient.Work.ListAsync(cp.EnvironmentId)).Data.Single();
            var sandbox = await engine.Client.CreateAsync(new CreateSandboxRequest { Name = name, Image = "host" });
            var proxy = engine.Client.Proxy(sandbox);
            var stale = await proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["600"], Name = WorkerLauncher.ProcessName(item.Id) });

            await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
            var spawned = Assert.Single((await orchestrator.DrainAsync(CancellationToken.None)).Outcomes);
            Assert.True(spawned.Succeeded, spawned.Detail); // at the first claim, not after a failed hand-off and a release
            Assert.NotEqual("running", (await proxy.GetProcessAsync(stale.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture))).Status);
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
        }
        finally
        {
            await engine.DeleteQuietlyAsync(name);
        }
    }

    private async Task WaitForNoWorkerAsync(string name)
    {
        var proxy = engine.Client.Proxy(await engine.Client.GetAsync(name));
        var deadline = DateTimeOffset.UtcNow.AddSeconds(60);
        while (DateTimeOffset.UtcNow < deadline)
        {
            var processes = await proxy.ListProcessesAsync();
            if (!processes.Any(p => p.Status == "running" && p.Command?.EndsWith("hands-worker", StringComparison.Ordinal) == true))
            {
                return;
            }

            await Task.Delay(250);
        }

        throw new TimeoutException($"the worker in {name} did not exit after its max idle");
    }
}
