using System.Collections.Concurrent;
using Hands.Protocol;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// An orchestrator killed between claiming an item and handing it to a worker leaves a record of the claim; the next
/// one settles it before it polls. A real control plane whose leases last an hour plays the queue, so an item the new
/// orchestrator did not release would not come back within any of these tests' waits; a loopback fake plays the
/// sandbox provider, and the test plays the worker (it takes the lease with the sessions token it was handed).
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ClaimRecoveryTests : IAsyncDisposable
{
    private static readonly TimeSpan Hour = TimeSpan.FromHours(1);
    private readonly string _claims = Path.Combine(Path.GetTempPath(), $"hands-claims-test-{Guid.NewGuid():N}");
    private TestControlPlane? _cp;

    public async ValueTask DisposeAsync()
    {
        if (_cp is not null)
        {
            await _cp.DisposeAsync();
        }

        if (Directory.Exists(_claims))
        {
            Directory.Delete(_claims, recursive: true);
        }
    }

    /// <summary>What the killed orchestrator got done: poll, record, ack, and the claim's first heartbeat (an hour's lease).</summary>
    private async Task<(string Env, string Key, WorkItem Item, WorkHeartbeat Claimed)> DeadOrchestratorsClaimAsync()
    {
        _cp = await TestControlPlane.StartAsync(o => o.LeaseTtl = Hour);
        var (env, key) = await _cp.CreateEnvironmentAsync();
        var agent = await _cp.CreateAgentAsync();
        await _cp.CreateSessionAsync(env.Id, agent.Id);
        var dead = _cp.Worker(key);
        var item = await dead.Work.PollAsync(env.Id, 100) ?? throw new InvalidOperationException("no work item was queued");
        new ClaimRecords(_claims, NullLogger.Instance).Record(env.Id, item.Id, item.Data.Id, DateTimeOffset.UtcNow);
        await dead.Work.AckAsync(env.Id, item.Id);
        var claimed = await dead.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat);
        Assert.Equal((int)Hour.TotalSeconds, claimed.TtlSeconds);
        return (env.Id, key, item, claimed);
    }

    private OrchestratorOptions Options(string env, string key, ILogger logger) => new()
    {
        EnvironmentId = env,
        EnvironmentKey = key,
        BaseUrl = _cp!.BaseAddress,
        ClaimsDirectory = _claims,
        HandOffHeartbeatInterval = TimeSpan.FromMilliseconds(50),
        HandOffTimeout = TimeSpan.FromSeconds(30),
        Logger = logger,
    };

    /// <summary>The worker's first heartbeat, with the sessions token the orchestrator wrote to its stdin.</summary>
    private Func<string, string, Task> WorkerTakesTheLease(string env, string workId) => async (_, secret) =>
    {
        var token = WorkSecretCodec.TryDecode(secret)?.SessionsToken ?? throw new InvalidOperationException("the worker got no sessions token");
        await _cp!.Client(ManagedAgentsCredential.Bearer(token)).Work.HeartbeatAsync(env, workId, WorkOperations.NoHeartbeat);
    };

    private string[] Records() => Directory.Exists(_claims) ? Directory.GetFileSystemEntries(_claims) : [];

    [Theory]
    [InlineData("poll")]
    [InlineData("webhook")]
    public async Task A_claim_a_killed_orchestrator_left_is_released_at_start_and_spawned_long_before_its_lease_would_lapse(string mode)
    {
        var (env, key, item, _) = await DeadOrchestratorsClaimAsync();
        await using var provider = await FakeSandboxProvider.StartAsync();
        // It had made the session's sandbox and died before starting the worker.
        provider.AddSandbox(SandboxNames.ForSession(item.Data.Id));
        provider.SecretDelivered = WorkerTakesTheLease(env, item.Id);
        var log = new RecordingLogger();
        var outcomes = new ConcurrentQueue<SpawnOutcome>();
        await using var orchestrator = new WorkQueueOrchestrator(_cp!.Worker(key), provider.Client, Options(env, key, log));
        orchestrator.Spawned += outcomes.Enqueue;
        using var stop = new CancellationTokenSource();

        Task running;
        WebhookReceiver? receiver = null;
        if (mode == "poll")
        {
            running = orchestrator.RunPollingAsync(200, stop.Token);
        }
        else
        {
            // No delivery comes (the session's run started before the crash) and the fallback drain is an hour away.
            receiver = await WebhookReceiver.StartAsync(orchestrator, new WebhookReceiverOptions
            {
                Url = new Uri("http://127.0.0.1:0"),
                SigningKey = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                FallbackDrainInterval = Hour,
            });
            running = Task.CompletedTask;
        }

        try
        {
            await Eventually.TrueAsync(() => !outcomes.IsEmpty, "the recovered item to be spawned");
        }
        finally
        {
            await stop.CancelAsync();
            await running;
            if (receiver is not null)
            {
                await receiver.DisposeAsync();
            }
        }

        var outcome = Assert.Single(outcomes);
        Assert.True(outcome.Succeeded, outcome.Detail);
        Assert.Equal(item.Id, outcome.WorkId);
        Assert.Equal(HandOffResult.HandedOff, outcome.HandOff);
        var recovery = await orchestrator.RecoverClaimsAsync();
        Assert.Equal(ClaimRecoveryOutcome.Released, Assert.Single(recovery.Claims).Outcome);
        Assert.True(log.Saw(LogLevel.Information, $"recovered claim of work {item.Id} (session {item.Data.Id}) from a previous orchestrator: released"));
        Assert.Empty(Records());
        Assert.Empty(provider.Unexpected);
    }

    [Fact]
    public async Task A_claim_whose_worker_runs_in_the_sessions_sandbox_is_left_to_that_worker_and_its_lease_untouched()
    {
        var (env, key, item, _) = await DeadOrchestratorsClaimAsync();
        // The hand-off went through before the crash: the worker runs, and its heartbeat holds the lease.
        var worker = _cp!.Client(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!));
        var workers = await worker.Work.HeartbeatAsync(env, item.Id, WorkOperations.NoHeartbeat);
        await using var provider = await FakeSandboxProvider.StartAsync();
        provider.AddSandbox(SandboxNames.ForSession(item.Data.Id));
        provider.AddRunningProcess(WorkerLauncher.ProcessName(item.Id));
        var log = new RecordingLogger();
        await using var orchestrator = new WorkQueueOrchestrator(_cp.Worker(key), provider.Client, Options(env, key, log));

        var recovery = await orchestrator.RecoverClaimsAsync();

        Assert.Equal(ClaimRecoveryOutcome.LeftToWorker, Assert.Single(recovery.Claims).Outcome);
        Assert.Null(recovery.RequeuedBy);
        Assert.True(log.Saw(LogLevel.Information, $"recovered claim of work {item.Id} (session {item.Data.Id}) from a previous orchestrator: left to its worker"));
        Assert.Empty(Records());
        // Had anyone beaten since, the worker's echo would be stale and this renewal refused with 412.
        var renewed = await worker.Work.HeartbeatAsync(env, item.Id, workers.LastHeartbeat!);
        Assert.True(renewed.LeaseExtended);
        Assert.Equal(WorkState.Active, renewed.State);
        Assert.True(provider.IsRunning(WorkerLauncher.ProcessName(item.Id)));
    }

    [Fact]
    public async Task A_worker_still_waiting_for_its_secret_does_not_hold_the_claim_so_the_claim_is_released()
    {
        var (env, key, item, claimed) = await DeadOrchestratorsClaimAsync();
        await using var provider = await FakeSandboxProvider.StartAsync();
        provider.AddSandbox(SandboxNames.ForSession(item.Data.Id));
        // Started, then the orchestrator died before writing the secret: stdin is still open and nothing heartbeats.
        provider.AddRunningProcess(WorkerLauncher.ProcessName(item.Id), stdinOpen: true);
        await using var orchestrator = new WorkQueueOrchestrator(_cp!.Worker(key), provider.Client, Options(env, key, NullLogger.Instance));

        var recovery = await orchestrator.RecoverClaimsAsync();

        Assert.Equal(ClaimRecoveryOutcome.Released, Assert.Single(recovery.Claims).Outcome);
        var refused = await Assert.ThrowsAsync<HeartbeatPreconditionFailedException>(() =>
            _cp.Worker(key).Work.HeartbeatAsync(env, item.Id, claimed.LastHeartbeat!));
        Assert.Equal(1, refused.CurrentState!.TtlSeconds);
        Assert.Empty(Records());
    }

    [Fact]
    public async Task A_failed_spawn_removes_its_record_and_the_record_was_there_while_it_ran()
    {
        _cp = await TestControlPlane.StartAsync(o => o.LeaseTtl = Hour);
        var (env, key) = await _cp.CreateEnvironmentAsync();
        var agent = await _cp.CreateAgentAsync();
        var session = await _cp.CreateSessionAsync(env.Id, agent.Id);
        await using var provider = await FakeSandboxProvider.StartAsync();
        provider.AddSandbox(SandboxNames.ForSession(session.Id));
        var recordedDuringSpawn = new ConcurrentQueue<string>();
        provider.Intercept = async context =>
        {
            if (context.Request.Method != "POST" || context.Request.Path != "/api/v1/processes")
            {
                return false;
            }

            foreach (var record in Records())
            {
                recordedDuringSpawn.Enqueue(Path.GetFileName(record));
            }

            context.Response.StatusCode = 400;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""{"message":"no such command"}""");
            return true;
        };
        await using var orchestrator = new WorkQueueOrchestrator(_cp.Worker(key), provider.Client, Options(env.Id, key, NullLogger.Instance));

        var drained = await orchestrator.DrainAsync(CancellationToken.None);

        var outcome = Assert.Single(drained.Outcomes);
        Assert.False(outcome.Succeeded);
        Assert.Equal(new[] { outcome.WorkId + ".json" }, recordedDuringSpawn.ToArray());
        Assert.Empty(Records());
    }

    /// <summary>
    /// The reference answers <c>NO_HEARTBEAT</c> on an item that has a heartbeat with 412 (the local control plane lets
    /// it take the lease over instead): a queue stub answering that way shows the release follows the 412's
    /// <c>current_state</c>, with the shortest TTL both times, and leaves a queued item alone.
    /// </summary>
    [Fact]
    public async Task Where_NO_HEARTBEAT_is_refused_with_412_the_release_renews_from_current_state_with_a_one_second_ttl()
    {
        const string held = "2026-11-26T12:00:00.0000001Z";
        var requests = new ConcurrentQueue<string>();
        await using var queue = await LoopbackStub.StartAsync(async context =>
        {
            requests.Enqueue(context.Request.Path + context.Request.QueryString);
            var work = context.Request.Path.Value!.Split('/')[^2];
            var expected = context.Request.Query["expected_last_heartbeat"].ToString();
            context.Response.ContentType = "application/json";
            if (expected == WorkOperations.NoHeartbeat)
            {
                var state = work == "work_queued" ? "queued" : "active";
                context.Response.StatusCode = 412;
                await context.Response.WriteAsync("""{"type":"error","error":{"type":"invalid_request_error","message":"expected_last_heartbeat does not match","details":{"error_code":"heartbeat_precondition_failed","current_state":{"state":"STATE","ttl_seconds":60,"last_heartbeat":"HELD","lease_extended":false}}}}"""
                    .Replace("STATE", state, StringComparison.Ordinal).Replace("HELD", held, StringComparison.Ordinal));
                return;
            }

            await context.Response.WriteAsync($$$"""{"type":"work_heartbeat","last_heartbeat":"2026-11-26T12:00:01Z","lease_extended":true,"state":"active","ttl_seconds":{{{context.Request.Query["desired_ttl_seconds"]}}}}""");
        });
        await using var provider = await FakeSandboxProvider.StartAsync();
        var records = new ClaimRecords(_claims, NullLogger.Instance);
        records.Record("env_1", "work_held", "sesn_1", DateTimeOffset.UtcNow);
        records.Record("env_1", "work_queued", "sesn_2", DateTimeOffset.UtcNow);
        using var environment = new ManagedAgentsClient(ManagedAgentsCredential.Bearer("env-key"),
            new ManagedAgentsClientOptions { BaseUrl = queue.BaseAddress, MaxRetries = 0 });
        await using var orchestrator = new WorkQueueOrchestrator(environment, provider.Client,
            new OrchestratorOptions { EnvironmentId = "env_1", EnvironmentKey = "env-key", BaseUrl = queue.BaseAddress, ClaimsDirectory = _claims });

        var recovery = await orchestrator.RecoverClaimsAsync();

        Assert.Equal(new[] { ClaimRecoveryOutcome.Released, ClaimRecoveryOutcome.NothingHeld }, recovery.Claims.Select(c => c.Outcome).ToArray());
        Assert.NotNull(recovery.RequeuedBy);
        var beats = requests.Where(r => r.Contains("/heartbeat", StringComparison.Ordinal)).ToArray();
        Assert.Equal(new[]
        {
            "/v1/environments/env_1/work/work_held/heartbeat?expected_last_heartbeat=NO_HEARTBEAT&desired_ttl_seconds=1",
            $"/v1/environments/env_1/work/work_held/heartbeat?expected_last_heartbeat={Uri.EscapeDataString(held)}&desired_ttl_seconds=1",
        }, beats.Where(r => r.Contains("work_held", StringComparison.Ordinal)).ToArray());
        Assert.Single(beats, r => r.Contains("work_queued", StringComparison.Ordinal));
        Assert.Empty(Records());
    }

    [Fact]
    public async Task A_claim_whose_release_fails_is_kept_for_the_next_start_and_one_past_its_lifetime_is_dropped_without_a_call()
    {
        var requests = new ConcurrentQueue<string>();
        await using var queue = await LoopbackStub.StartAsync(async context =>
        {
            requests.Enqueue(context.Request.Path.Value!);
            context.Response.StatusCode = 503;
            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("""{"type":"error","error":{"type":"overloaded_error","message":"busy"}}""");
        });
        await using var provider = await FakeSandboxProvider.StartAsync();
        var records = new ClaimRecords(_claims, NullLogger.Instance);
        records.Record("env_1", "work_recent", "sesn_1", DateTimeOffset.UtcNow);
        records.Record("env_1", "work_old", "sesn_2", DateTimeOffset.UtcNow - TimeSpan.FromMinutes(16));
        using var environment = new ManagedAgentsClient(ManagedAgentsCredential.Bearer("env-key"),
            new ManagedAgentsClientOptions { BaseUrl = queue.BaseAddress, MaxRetries = 0 });
        var log = new RecordingLogger();
        await using var orchestrator = new WorkQueueOrchestrator(environment, provider.Client,
            new OrchestratorOptions { EnvironmentId = "env_1", EnvironmentKey = "env-key", BaseUrl = queue.BaseAddress, ClaimsDirectory = _claims, Logger = log });

        var recovery = await orchestrator.RecoverClaimsAsync();

        // Ordered by work id: work_old, work_recent.
        Assert.Equal(new[] { ClaimRecoveryOutcome.Expired, ClaimRecoveryOutcome.Kept }, recovery.Claims.Select(c => c.Outcome).ToArray());
        Assert.All(requests, r => Assert.DoesNotContain("work_old", r, StringComparison.Ordinal));
        Assert.Equal("work_recent", Assert.Single(new ClaimRecords(_claims, NullLogger.Instance).ReadAll()).WorkId);
        Assert.True(log.Saw(LogLevel.Warning, "claim of work work_recent (session sesn_1) from a previous orchestrator not recovered: kept for the next start"));
    }

    [Fact]
    public async Task Without_a_claims_directory_or_a_lock_nothing_is_recorded_or_recovered()
    {
        var (env, key, item, _) = await DeadOrchestratorsClaimAsync();
        await using var provider = await FakeSandboxProvider.StartAsync();
        var options = Options(env, key, NullLogger.Instance);
        await using var orchestrator = new WorkQueueOrchestrator(_cp!.Worker(key), provider.Client, new OrchestratorOptions
        {
            EnvironmentId = options.EnvironmentId,
            EnvironmentKey = options.EnvironmentKey,
            BaseUrl = options.BaseUrl,
        });

        Assert.Empty((await orchestrator.RecoverClaimsAsync()).Claims);
        Assert.Equal(item.Id, Assert.Single(new ClaimRecords(_claims, NullLogger.Instance).ReadAll()).WorkId);
    }
}
