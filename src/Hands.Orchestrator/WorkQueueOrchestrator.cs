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
/// </summary>
public sealed class WorkQueueOrchestrator : IAsyncDisposable
{
    private const int DrainReclaimOlderThanMs = 2000;
    private readonly ManagedAgentsClient _environment;
    private readonly OrchestratorOptions _options;
    private readonly SessionSpawner _spawner;
    private readonly SemaphoreSlim _slots;
    private readonly ConcurrentDictionary<Task, byte> _inFlight = new();
    private readonly SemaphoreSlim _drainGate = new(1, 1);
    private readonly ResiliencePipeline _pollRetry;
    private int _drainRequested;
    private long _spawned;
    private long _failed;
    private readonly object _capacityGate = new();
    private DateTimeOffset _pausedUntil = DateTimeOffset.MinValue;
    private int _capacityRefusals;

    public WorkQueueOrchestrator(ManagedAgentsClient environmentClient, TensorlakeClient sandboxes, OrchestratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxConcurrentSpawns, 1);
        _environment = environmentClient;
        _options = options;
        _spawner = new SessionSpawner(environmentClient, sandboxes, options);
        _slots = new SemaphoreSlim(options.MaxConcurrentSpawns, options.MaxConcurrentSpawns);
        _pollRetry = OrchestratorResilience.BuildWorkPoll(options);
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
    /// When claiming resumes after the sandbox provider refused a sandbox for want of capacity (429); in the past while
    /// claims go on. Items wait in the queue meanwhile (for this orchestrator's next try, or another's), never held.
    /// </summary>
    public DateTimeOffset PausedUntil
    {
        get
        {
            lock (_capacityGate)
            {
                return _pausedUntil;
            }
        }
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
            while (!cancellationToken.IsCancellationRequested)
            {
                await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                WorkItem? item;
                try
                {
                    await WaitOutCapacityPauseAsync(cancellationToken).ConfigureAwait(false);
                    item = await _pollRetry.ExecuteAsync(async ct => await ClaimAsync(blockMs, null, ct, clientRetries: false).ConfigureAwait(false),
                        cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    _slots.Release();
                    throw;
                }

                if (item is null)
                {
                    // The server already held the request for block_ms: poll again at once.
                    _slots.Release();
                    continue;
                }

                _ = Start(item);
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
    /// waits for the spawns it started. A drain asked for while one runs makes that one go round once more.
    /// </summary>
    public async Task<DrainSummary> DrainAsync(CancellationToken cancellationToken)
    {
        Interlocked.Exchange(ref _drainRequested, 1);
        if (!await _drainGate.WaitAsync(0, cancellationToken).ConfigureAwait(false))
        {
            return new DrainSummary([]);
        }

        var outcomes = new ConcurrentBag<SpawnOutcome>();
        try
        {
            while (Interlocked.Exchange(ref _drainRequested, 0) == 1)
            {
                var started = new List<Task>();
                while (!cancellationToken.IsCancellationRequested)
                {
                    await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                    WorkItem? item;
                    try
                    {
                        await WaitOutCapacityPauseAsync(cancellationToken).ConfigureAwait(false);
                        item = await ClaimAsync(null, DrainReclaimOlderThanMs, cancellationToken).ConfigureAwait(false);
                    }
                    catch
                    {
                        _slots.Release();
                        throw;
                    }

                    if (item is null)
                    {
                        _slots.Release();
                        break;
                    }

                    var task = Start(item);
                    started.Add(task.ContinueWith(t => outcomes.Add(t.Result), CancellationToken.None, TaskContinuationOptions.OnlyOnRanToCompletion,
                        TaskScheduler.Default));
                }

                await Task.WhenAll(started).ConfigureAwait(false);
            }
        }
        finally
        {
            _drainGate.Release();
        }

        return new DrainSummary([.. outcomes.OrderBy(o => o.WorkId, StringComparer.Ordinal)]);
    }

    /// <summary>Waits for every spawn under way.</summary>
    public Task WhenIdleAsync() => Task.WhenAll(_inFlight.Keys);

    public async ValueTask DisposeAsync()
    {
        await WhenIdleAsync().ConfigureAwait(false);
        _slots.Dispose();
        _drainGate.Dispose();
    }

    /// <summary>
    /// Polls once and acknowledges; null when the queue has nothing (or only items that are not sessions).
    /// <paramref name="clientRetries"/> is off when the caller retries the poll itself.
    /// </summary>
    private async Task<WorkItem?> ClaimAsync(int? blockMs, int? reclaimOlderThanMs, CancellationToken cancellationToken, bool clientRetries = true)
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
                continue;
            }
            catch (ManagedAgentsException ex)
            {
                // Transient: the unacknowledged item is handed out again after reclaim_older_than_ms.
                _options.Logger.LogWarning("ack of {Work} failed ({Status}); it will be redelivered", item.Id, ex.Status);
                continue;
            }

            if (item.Data.Type != "session")
            {
                _options.Logger.LogInformation("skipping work {Work} of type {Type}", item.Id, item.Data.Type);
                await StopQuietlyAsync(item.Id, cancellationToken).ConfigureAwait(false);
                continue;
            }

            return item;
        }
    }

    /// <summary>Spawns in the background, holding the slot the claim took until the spawn ends.</summary>
    private Task<SpawnOutcome> Start(WorkItem item)
    {
        var task = Task.Run(async () =>
        {
            try
            {
                var outcome = await _spawner.SpawnAsync(item, CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref outcome.Succeeded ? ref _spawned : ref _failed);
                NoteCapacity(outcome);
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

    /// <summary>
    /// A refusal for capacity pauses claiming: 0.5 s, doubling with each pause that ends in another refusal, to 4 s (short:
    /// capacity comes back when some session's sandbox goes, and claims wait for the pause to end); a
    /// successful spawn ends the series. Refusals of spawns that were already under way when the pause began count once
    /// (they met the same full provider).
    /// </summary>
    private void NoteCapacity(SpawnOutcome outcome)
    {
        lock (_capacityGate)
        {
            var now = _options.TimeProvider.GetUtcNow();
            if (outcome.Succeeded)
            {
                _capacityRefusals = 0;
            }
            else if (outcome.ProviderAtCapacity && now >= _pausedUntil)
            {
                _capacityRefusals++;
                _pausedUntil = now + CapacityPause(_capacityRefusals);
                _options.Logger.LogWarning("the sandbox provider is at capacity; claiming paused until {Until:HH:mm:ss.fff}", _pausedUntil);
            }
        }
    }

    private async Task WaitOutCapacityPauseAsync(CancellationToken cancellationToken)
    {
        var wait = PausedUntil - _options.TimeProvider.GetUtcNow();
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>How long claiming pauses after the <paramref name="refusals"/>-th capacity refusal in a row: 0.5 s doubling to 4 s.</summary>
    public static TimeSpan CapacityPause(int refusals) => TimeSpan.FromMilliseconds(Math.Min(4_000, 500 * Math.Pow(2, Math.Clamp(refusals - 1, 0, 16))));

    /// <summary>1 s doubling to 60 s, less up to a quarter for jitter (the TypeScript poller's rule).</summary>
    public static TimeSpan Backoff(int failures)
    {
        var seconds = Math.Min(60, Math.Pow(2, Math.Max(0, failures - 1)));
        return TimeSpan.FromSeconds(seconds * (1 - (Random.Shared.NextDouble() * 0.25)));
    }
}
