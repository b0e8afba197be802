using System.Collections.Concurrent;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;
using Polly;

namespace Hands.Orchestrator;

/// <summary>What one drain did.</summary>
public sealed record DrainSummary(IReadOnlyList<SpawnOutcome> Outcomes)
{
    public int Spawned => Outcomes.Count(o => o.Succeeded);
    public int Failed => Outcomes.Count(o => !o.Succeeded);
}

/// <summary>
/// The environment's work queue to one sandbox per session. Two ways to consume it: <see cref="RunPollingAsync"/>
/// long-polls for ever (<c>hands poll</c>); <see cref="DrainAsync"/> claims until the queue is empty (webhook
/// deliveries and their fallback timer). Either way each claimed item is acknowledged and spawned in the background,
/// at most <see cref="OrchestratorOptions.MaxConcurrentSpawns"/> at once; no item is claimed without a free slot, so
/// a busy orchestrator leaves work in the queue instead of holding leases it cannot serve. Concurrent drain requests
/// coalesce: one runs, and runs once more if asked meanwhile.
/// <para>
/// With a claims directory (<see cref="OrchestratorOptions.ClaimsDirectory"/>, by default beside the lock it is given)
/// each polled item is recorded before it is acknowledged and the record removed when its spawn ends, and before the
/// first poll or drain the claims a killed predecessor left are settled (<see cref="RecoverClaimsAsync"/>): released at
/// once, or left to a worker already running, instead of stalling for a lease TTL.
/// </para>
/// </summary>
public sealed class WorkQueueOrchestrator : IAsyncDisposable
{
    private const int DrainReclaimOlderThanMs = 2000;

    /// <summary>A lapsed lease is queued again by the control plane's sweep (every 250 ms locally), not at the instant it ends.</summary>
    private static readonly TimeSpan RequeueGrace = TimeSpan.FromSeconds(1);
    private readonly ManagedAgentsClient _environment;
    private readonly OrchestratorOptions _options;
    private readonly SessionSpawner _spawner;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentDictionary<Task, byte> _inFlight = new();
    private readonly SemaphoreSlim _drainGate = new(1, 1);
    private readonly ResiliencePipeline _pollRetry;
    private readonly ClaimRecords? _claims;
    private readonly Lazy<Task<ClaimRecoverySummary>> _recovery;
    private int _drainRequested;
    private long _spawned;
    private long _failed;

    /// <param name="environmentClient">A client holding the environment key.</param>
    /// <param name="sandboxes">The sandbox provider.</param>
    /// <param name="options">Settings.</param>
    /// <param name="held">
    /// The environment's orchestrator lock, held by the caller for the orchestrator's lifetime: claims are recorded beside
    /// it unless <see cref="OrchestratorOptions.ClaimsDirectory"/> says where. Without either, nothing is recorded.
    /// </param>
    public WorkQueueOrchestrator(ManagedAgentsClient environmentClient, TensorlakeClient sandboxes, OrchestratorOptions options, OrchestratorLock? held = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConcurrentSpawns, 1);
        _environment = environmentClient;
        _options = options;
        _spawner = new SessionSpawner(environmentClient, sandboxes, options);
        _slots = new SemaphoreSlim(options.MaxConcurrentSpawns, options.MaxConcurrentSpawns);
        _pollRetry = OrchestratorResilience.BuildWorkPoll(options);
        var claimsDirectory = options.ClaimsDirectory ?? held?.ClaimsDirectory;
        // Owner-only directories and fsync of a directory are Unix's; the lock's flock is too.
        _claims = claimsDirectory is null || OperatingSystem.IsWindows() ? null : new ClaimRecords(claimsDirectory, options.Logger);
        _recovery = new(() => _claims is null
            ? Task.FromResult(ClaimRecoverySummary.None)
            : Task.Run(() => new ClaimRecovery(environmentClient, sandboxes, options, _claims).RunAsync()));
    }

    /// <summary>Raised after each spawn, success or not (progress output, tests, benchmarks).</summary>
    public event Action<SpawnOutcome>? Spawned;

    /// <summary>Items brought to an attached worker since start.</summary>
    public long SpawnedCount => Interlocked.Read(ref _spawned);

    /// <summary>Spawns that failed since start.</summary>
    public long FailedCount => Interlocked.Read(ref _failed);

    /// <summary>Spawns under way.</summary>
    public int InFlight => _inFlight.Count;

    /// <summary>
    /// Settles the claims a previous orchestrator recorded and did not see through: each is left to its worker if that
    /// runs in the session's sandbox, else released so the item is queued again within a second (<see cref="ClaimRecovery"/>).
    /// Runs once, on the first call (<see cref="RunPollingAsync"/> and <see cref="DrainAsync"/> make it before they claim
    /// anything); later calls return the same result. It never throws for a claim it cannot settle (that one is kept for
    /// the next start) and gives up after <see cref="OrchestratorOptions.ClaimRecoveryTimeout"/>.
    /// </summary>
    /// <param name="cancellationToken">Stops waiting for the result (the recovery itself runs on to its own deadline).</param>
    public Task<ClaimRecoverySummary> RecoverClaimsAsync(CancellationToken cancellationToken = default) =>
        _recovery.Value.WaitAsync(cancellationToken);

    /// <summary>
    /// Waits for <see cref="RecoverClaimsAsync"/> and, if it released any claim, until those leases have lapsed (by the
    /// TTL the control plane granted, plus a second for it to queue the items). True when it released any: a caller that
    /// claims only when told to (the webhook receiver) drains then, since no delivery announces those items again.
    /// </summary>
    public async Task<bool> WhenReleasedClaimsRequeuedAsync(CancellationToken cancellationToken)
    {
        var recovery = await RecoverClaimsAsync(cancellationToken).ConfigureAwait(false);
        if (recovery.RequeuedBy is not { } requeuedBy)
        {
            return false;
        }

        var wait = requeuedBy + RequeueGrace - _options.TimeProvider.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }

        return true;
    }

    /// <summary>
    /// Long-polls (<paramref name="blockMs"/>, 1-999) until cancelled. Transient errors back off exponentially
    /// (1 s doubling to 60 s, with jitter: the <see cref="OrchestratorResilience.WorkPollPipeline"/> pipeline, the only
    /// layer that retries a poll); a permanent 4xx throws <see cref="OrchestratorException"/> naming it. On
    /// cancellation no new item is claimed and the spawns under way are finished before returning.
    /// </summary>
    public async Task RunPollingAsync(int blockMs, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockMs, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(blockMs, 999);
        try
        {
            await RecoverClaimsAsync(cancellationToken).ConfigureAwait(false);
            while (!cancellationToken.IsCancellationRequested)
            {
                await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                Claim? claim;
                try
                {
                    claim = await _pollRetry.ExecuteAsync(async ct => await ClaimAsync(blockMs, null, ct, clientRetries: false).ConfigureAwait(false),
                        cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    _slots.Release();
                    throw;
                }

                if (claim is null)
                {
                    // The server already held the request for block_ms: poll again at once.
                    _slots.Release();
                    continue;
                }

                _ = Start(claim);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Shutting down: finish what was started.
        }

        await WhenIdleAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Claims (non-blocking polls, reclaiming items polled but not acknowledged for 2 s) until the queue is empty, and
    /// waits for the spawns it started. A drain asked for while another claims makes that one claim once more and
    /// returns at once (with no outcomes).
    /// </summary>
    /// <remarks>
    /// Only the claiming is one-at-a-time, not the wait for spawns: a spawn lasts until its worker has taken the lease,
    /// and a drain that held the gate through that wait made the next session's webhook wait for the previous
    /// session's hand-off (webhook mode measured 640 ms to the first tool result against 200 ms polling).
    /// </remarks>
    public async Task<DrainSummary> DrainAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _drainRequested, 1);
        await RecoverClaimsAsync(cancellationToken).ConfigureAwait(false);
        var outcomes = new ConcurrentBag<SpawnOutcome>();
        var started = new List<Task>();
        // Re-checked after the gate is let go: a request that came between the last claim round and the release would
        // otherwise find the gate taken and be lost.
        while (Volatile.Read(ref _drainRequested) == 1 && await _drainGate.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                while (Interlocked.Exchange(ref _drainRequested, 0) == 1)
                {
                    await ClaimUntilEmptyAsync(started, outcomes, cancellationToken).ConfigureAwait(false);
                }
            }
            finally
            {
                _drainGate.Release();
            }
        }

        await Task.WhenAll(started).ConfigureAwait(false);
        return new DrainSummary([.. outcomes.OrderBy(o => o.WorkId, StringComparer.Ordinal)]);
    }

    private async Task ClaimUntilEmptyAsync(List<Task> started, ConcurrentBag<SpawnOutcome> outcomes, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            Claim? claim;
            try
            {
                claim = await ClaimAsync(null, DrainReclaimOlderThanMs, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                _slots.Release();
                throw;
            }

            if (claim is null)
            {
                _slots.Release();
                return;
            }

            var task = Start(claim);
            started.Add(task.ContinueWith(t => outcomes.Add(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                TaskScheduler.Default));
        }
    }

    /// <summary>Waits for every spawn under way.</summary>
    public Task WhenIdleAsync() => Task.WhenAll(_inFlight.Keys);

    public async ValueTask DisposeAsync()
    {
        await WhenIdleAsync().ConfigureAwait(false);
        _slots.Dispose();
        _drainGate.Dispose();
    }

    /// <summary>A polled and acknowledged session item, and its record (null when claims are not recorded).</summary>
    private sealed record Claim(WorkItem Item, ClaimRecord? Record);

    /// <summary>
    /// Polls once and acknowledges; null when the queue has nothing (or only items that are not sessions). The claim is
    /// recorded before the ack (a crash before it leaves an unacknowledged item, which the queue hands out again by
    /// itself) and the record removed here if the item goes no further.
    /// <paramref name="clientRetries"/> is off when the caller retries the poll itself.
    /// </summary>
    private async Task<Claim?> ClaimAsync(int? blockMs, int? reclaimOlderThanMs, CancellationToken cancellationToken, bool clientRetries = true)
    {
        while (true)
        {
            WorkItem? item;
            try
            {
                item = await _environment.Work.PollAsync(_options.EnvironmentId, blockMs, reclaimOlderThanMs, _options.WorkerId, cancellationToken,
                    retry: clientRetries).ConfigureAwait(false);
            }
            catch (ManagedAgentsException ex) when (ex.IsFatal)
            {
                throw new OrchestratorException(ex.Status is 401 or 403
                    ? $"the work queue refused ANTHROPIC_ENVIRONMENT_KEY ({ex.Status}): check the key belongs to environment {_options.EnvironmentId}"
                    : $"polling environment {_options.EnvironmentId} failed permanently ({ex.Status}): {ex.ErrorMessage}", ex);
            }

            if (item is null)
            {
                return null;
            }

            var record = _claims?.Record(string.IsNullOrEmpty(item.EnvironmentId) ? _options.EnvironmentId : item.EnvironmentId, item.Id, item.Data.Id,
                _options.TimeProvider.GetUtcNow());
            try
            {
                var acked = await _environment.Work.AckAsync(_options.EnvironmentId, item.Id, cancellationToken).ConfigureAwait(false);
                acked.Secret ??= item.Secret;
                item = acked;
            }
            catch (ManagedAgentsException ex) when (ex.IsFatal)
            {
                // Gone or not ours any more: stop it quietly so it does not come back (the reference pollers do the same).
                _options.Logger.LogWarning("ack of {Work} refused ({Status}); stopping it", item.Id, ex.Status);
                await StopQuietlyAsync(item.Id, cancellationToken).ConfigureAwait(false);
                Forget(record);
                continue;
            }
            catch (ManagedAgentsException ex)
            {
                // Transient: the unacknowledged item is handed out again after reclaim_older_than_ms.
                _options.Logger.LogWarning("ack of {Work} failed ({Status}); it will be redelivered", item.Id, ex.Status);
                Forget(record);
                continue;
            }

            if (item.Data.Type != "session")
            {
                _options.Logger.LogInformation("skipping work {Work} of type {Type}", item.Id, item.Data.Type);
                await StopQuietlyAsync(item.Id, cancellationToken).ConfigureAwait(false);
                Forget(record);
                continue;
            }

            return new Claim(item, record);
        }
    }

    /// <summary>
    /// Spawns in the background, holding the slot the claim took until the spawn ends. However the spawn ended (handed
    /// off, item stopped, released, given up), nothing is left for a successor to settle, so the record goes; a spawn
    /// that threw instead leaves it, and the lease with it, to the next start.
    /// </summary>
    private Task<SpawnOutcome> Start(Claim claim)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                var outcome = await _spawner.SpawnAsync(claim.Item, CancellationToken.None).ConfigureAwait(false);
                Forget(claim.Record);
                Interlocked.Increment(ref outcome.Succeeded ? ref _spawned : ref _failed);
                Spawned?.Invoke(outcome);
                return outcome;
            }
            finally
            {
                _slots.Release();
            }
        });
        _inFlight.TryAdd(task, 0);
        _ = task.ContinueWith(t => _inFlight.TryRemove(t, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return task;
    }

    private void Forget(ClaimRecord? record)
    {
        if (record is not null)
        {
            _claims?.Remove(record);
        }
    }

    private async Task StopQuietlyAsync(string workId, CancellationToken cancellationToken)
    {
        try
        {
            await _environment.Work.StopAsync(_options.EnvironmentId, workId, force: true, cancellationToken).ConfigureAwait(false);
        }
        catch (ManagedAgentsException)
        {
            // Best effort.
        }
    }

    /// <summary>1 s doubling to 60 s, less up to a quarter for jitter (the TypeScript poller's rule).</summary>
    public static TimeSpan Backoff(int failures)
    {
        var seconds = Math.Min(60, Math.Pow(2, Math.Max(0, failures - 1)));
        return TimeSpan.FromSeconds(seconds * (1 - (Random.Shared.NextDouble() * 0.25)));
    }
}
