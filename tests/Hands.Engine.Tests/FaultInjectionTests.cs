using Hands.Faults;
using Xunit.Abstractions;

namespace Hands.Engine.Tests;

/// <summary>
/// Issue 15, "nothing lost, nothing run twice", on the whole stack run as an operator runs it: <c>hands control-plane</c>,
/// <c>hands engine</c> and <c>hands poll</c> as separate processes, workers started in each session's sandbox. Three
/// sessions of a scripted agent each run six slow bash steps that append a unique line to a ledger in the sandbox,
/// while each of the four processes is killed once with SIGKILL at a chosen point, the control plane answers a burst of
/// 500s and one of 429s, and the network between the workers and the control plane is cut for longer than the lease
/// TTL. Every session must complete, no call may be lost or answered twice, no ledger line may appear twice, and
/// nothing may be left behind by recovery or teardown.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class FaultInjectionTests(ITestOutputHelper output)
{
    private static readonly TimeSpan LeaseTtl = TimeSpan.FromSeconds(8);

    [Fact]
    public async Task Every_process_killed_once_a_500_and_429_burst_and_a_cut_longer_than_the_lease_lose_nothing_and_run_nothing_twice()
    {
        PlannedFault[] schedule =
        [
            // The orchestrator dies with items claimed and a sandbox being made: they wait out their lease, then are claimed again.
            new(FaultKind.KillOrchestrator, FaultPoint.DuringSpawn, TimeSpan.FromSeconds(1), TimeSpan.Zero),
            // A worker dies in the middle of a step: its successor answers that call as interrupted and runs the rest.
            new(FaultKind.KillWorker, FaultPoint.WhileStepRuns, TimeSpan.Zero, TimeSpan.Zero),
            new(FaultKind.Burst500, FaultPoint.Now, TimeSpan.FromSeconds(2), TimeSpan.Zero),
            // Restarted at once here; the long outage has its own case below.
            new(FaultKind.KillEngine, FaultPoint.WhileStepRuns, TimeSpan.Zero, TimeSpan.Zero),
            new(FaultKind.Burst429, FaultPoint.Now, TimeSpan.FromSeconds(2), TimeSpan.Zero),
            new(FaultKind.NetworkCut, FaultPoint.WhileStepRuns, LeaseTtl + TimeSpan.FromSeconds(4), TimeSpan.Zero),
            new(FaultKind.KillControlPlane, FaultPoint.AfterStep, TimeSpan.FromSeconds(1), TimeSpan.Zero),
        ];
        var logs = NewLogDirectory();
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        var outcomes = await FaultRun.RunAsync(new FaultStackOptions
        {
            SandboxDaemonBinary = SandboxDaemonBinary(),
            WorkerBinary = WorkerBinary(),
            LogDirectory = logs,
            Steps = 6,
            LeaseTtl = LeaseTtl,
            WorkerMaxIdle = TimeSpan.FromSeconds(3),
            Log = output.WriteLine,
        }, new FaultRunOptions
        {
            Sessions = 3,
            Faults = schedule,
            PointTimeout = TimeSpan.FromSeconds(30),
            DrainTimeout = TimeSpan.FromMinutes(2),
        }, bounded.Token);
        var report = string.Join('\n', outcomes.Report());
        output.WriteLine(report);
        var why = $"{report}\n(process logs in {logs})";

        foreach (var kind in Enum.GetValues<FaultKind>())
        {
            Assert.True(outcomes.Injected(kind) == 1, $"{kind} was injected {outcomes.Injected(kind)} times, not once\n{why}");
        }

        Assert.True(outcomes.Sessions.Count == 3 && outcomes.Completed == 3, $"{outcomes.Completed} of {outcomes.Sessions.Count} sessions completed\n{why}");
        Assert.True(outcomes.ToolCalls == 18, $"{outcomes.ToolCalls} tool calls, not 3 × 6\n{why}");
        Assert.True(outcomes.Lost == 0, $"{outcomes.Lost} tool calls lost\n{why}");
        Assert.True(outcomes.PostedTwice == 0, $"{outcomes.PostedTwice} results posted twice\n{why}");
        Assert.True(outcomes.ExecutedTwice == 0, $"{outcomes.ExecutedTwice} commands executed twice\n{why}");
        Assert.True(outcomes.EffectsMissing == 0, $"{outcomes.EffectsMissing} successful results without their effect\n{why}");
        Assert.True(outcomes.SandboxesReplaced == 0, $"{outcomes.SandboxesReplaced} session sandboxes lost and made again\n{why}");
        Assert.True(outcomes.OrphansAfterRecovery.Count == 0, $"orphans after recovery\n{why}");
        Assert.True(outcomes.LeaksAfterTeardown.Count == 0, $"leaks after teardown\n{why}");
        Assert.True(new[] { "control-plane", "engine", "orchestrator" }.All(p => outcomes.Starts[p] == 2), $"each process is started twice (once after its kill)\n{why}");
        Directory.Delete(logs, recursive: true);
    }

    [Fact]
    public async Task A_session_busier_than_its_sandbox_idle_timeout_is_not_suspended_under_its_worker()
    {
        // SANDBOX_TIMEOUT_SECONDS is an idle timeout, and the engine's idle clock counts inbound traffic: after the spawn a
        // session's sandbox gets none, however busy its worker is. Steps longer than the timeout must still run to the end
        // of the turn, once each, in the sandbox that began them.
        var logs = NewLogDirectory();
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var outcomes = await FaultRun.RunAsync(new FaultStackOptions
        {
            SandboxDaemonBinary = SandboxDaemonBinary(),
            WorkerBinary = WorkerBinary(),
            LogDirectory = logs,
            Steps = 3,
            StepSleep = _ => TimeSpan.FromSeconds(4),
            SandboxTimeoutSeconds = 2,
            LeaseTtl = LeaseTtl,
            WorkerMaxIdle = TimeSpan.FromSeconds(3),
            Log = output.WriteLine,
        }, new FaultRunOptions { Sessions = 2, DrainTimeout = TimeSpan.FromSeconds(90) }, bounded.Token);
        var why = string.Join('\n', outcomes.Report()) + $"\n(process logs in {logs})";
        output.WriteLine(why);
        Assert.True(outcomes.Sessions.Count == 2 && outcomes.Completed == 2, $"{outcomes.Completed} of {outcomes.Sessions.Count} sessions completed\n{why}");
        Assert.True(outcomes.Lost == 0 && outcomes.PostedTwice == 0 && outcomes.ExecutedTwice == 0 && outcomes.EffectsMissing == 0 && outcomes.Interrupted == 0, why);
        Assert.True(outcomes.SandboxesReplaced == 0 && outcomes.OrphansAfterRecovery.Count == 0 && outcomes.LeaksAfterTeardown.Count == 0, why);
        Directory.Delete(logs, recursive: true);
    }

    [Fact]
    public async Task An_engine_down_for_longer_than_the_lease_ttl_costs_no_worker_its_lease()
    {
        // The workers reach the control plane through the engine's host-port forwards, which run in a forwarder process
        // of their own: an engine killed while steps run and kept down for longer than the lease TTL must not cost any
        // worker its lease. No worker replaced (one started per session), no call answered "interrupted".
        var logs = NewLogDirectory();
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var workersStarted = -1;
        var outcomes = await FaultRun.RunAsync(new FaultStackOptions
        {
            SandboxDaemonBinary = SandboxDaemonBinary(),
            WorkerBinary = WorkerBinary(),
            LogDirectory = logs,
            Steps = 6,
            LeaseTtl = LeaseTtl,
            WorkerMaxIdle = TimeSpan.FromSeconds(3),
            Log = output.WriteLine,
        }, new FaultRunOptions
        {
            Sessions = 3,
            Faults = [new(FaultKind.KillEngine, FaultPoint.WhileStepRuns, LeaseTtl + TimeSpan.FromSeconds(4), TimeSpan.Zero)],
            DrainTimeout = TimeSpan.FromMinutes(2),
            OnTearDown = stack => workersStarted = stack.Orchestrator.Lines(l => l.Contains("worker started in", StringComparison.Ordinal)).Count,
        }, bounded.Token);
        var why = string.Join('\n', outcomes.Report()) + $"\n(process logs in {logs})";
        output.WriteLine(why);
        Assert.True(outcomes.Injected(FaultKind.KillEngine) == 1 && outcomes.Starts["engine"] == 2, $"the engine was not killed and started again once\n{why}");
        Assert.True(outcomes.Sessions.Count == 3 && outcomes.Completed == 3 && outcomes.ToolCalls == 18, $"{outcomes.Completed} of {outcomes.Sessions.Count} sessions completed\n{why}");
        Assert.True(outcomes.Lost == 0 && outcomes.PostedTwice == 0 && outcomes.ExecutedTwice == 0 && outcomes.EffectsMissing == 0, why);
        Assert.True(outcomes.SandboxesReplaced == 0 && outcomes.OrphansAfterRecovery.Count == 0 && outcomes.LeaksAfterTeardown.Count == 0, why);
        Assert.True(outcomes.Interrupted == 0, $"{outcomes.Interrupted} calls answered interrupted: a worker lost its lease\n{why}");
        Assert.True(workersStarted == 3, $"{workersStarted} workers started for 3 sessions: leases were lost and workers replaced\n{why}");
        Directory.Delete(logs, recursive: true);
    }

    private static string SandboxDaemonBinary() =>
        EngineFixture.Artifact("HANDS_SANDBOXD_BINARY", "hands-sandboxd") ?? throw new InvalidOperationException("publish hands-sandboxd first (scripts/test.sh)");

    private static string WorkerBinary() =>
        EngineFixture.Artifact("HANDS_WORKER_BINARY", "hands-worker") ?? throw new InvalidOperationException("publish hands-worker first (scripts/test.sh)");

    /// <summary>Where a run's process logs go; deleted when its test passes, kept (and named in the failure) when not.</summary>
    private static string NewLogDirectory() => Path.Combine(Path.GetTempPath(), "hands-fault-test-logs-" + Guid.NewGuid().ToString("N")[..8]);
}
