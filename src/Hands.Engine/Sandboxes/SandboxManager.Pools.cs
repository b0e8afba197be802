using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Hands.Engine.Storage;
using Hands.Engine.Telemetry;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

/// <summary>Which pool a sandbox being created belongs to, and whether it boots warm (a refill) or for a claim.</summary>
internal sealed record PoolMembership(string PoolId, int Generation, bool Warm);

/// <summary>
/// A pool's configuration as a create or a full replace (<c>PUT</c>) gives it. <see cref="NetworkSet"/> tells
/// <c>"network": null</c> (clear) from an absent key (keep), as on a sandbox's PATCH.
/// </summary>
internal sealed record PoolSpec(string? Image, double Cpus, int MemoryMb, int? DiskMb, int TimeoutSecs, List<string>? Entrypoint,
    int? MaxContainers, int? WarmContainers, bool NetworkSet, NetworkPolicy? Network);

/// <summary>A pool cannot take another sandbox now (its max_containers, its warm target, the warm memory budget): 429.</summary>
internal sealed class PoolLimitException(string message) : EngineException(429, message);

/// <summary>
/// Warm pools (Tensorlake's <c>/sandbox-pools</c>). A pool's sandboxes are ordinary sandboxes made by
/// <see cref="CreateAsync"/>, so isolation, egress policy and host-port forwards are the same as anyone's; while warm
/// they are hidden from the sandbox API and have no idle clock. A claim hands one out for good (it never returns to
/// the pool) and starts its idle clock; a background refill keeps each pool at its warm target, bounded by
/// <c>max_containers</c>, <see cref="EngineOptions.MaxSandboxes"/> and the warm memory budget
/// (<see cref="EngineOptions.PoolMemoryMb"/>). Every decision that counts a pool's sandboxes is taken under the
/// allocation lock creates take, with the store as the truth, so no count can overshoot.
/// </summary>
internal sealed partial class SandboxManager
{
    private static readonly TimeSpan MaxPoolRetryDelay = TimeSpan.FromMinutes(5);

    /// <summary>The executor every local container runs on (Tensorlake names its worker host here).</summary>
    public const string LocalExecutor = "local";

    // Capacity one, extra signals dropped: a signal that arrives while a refill pass runs makes exactly one more pass.
    private readonly Channel<bool> _poolWork = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    // Warm sandboxes being removed (recycled, trimmed, their pool deleted): a claim never hands one out meanwhile.
    private readonly ConcurrentDictionary<string, byte> _retiring = new(StringComparer.Ordinal);
    // Per pool, after a warm sandbox failed to start: not before when the refill boots again, and the delay it waited.
    private readonly ConcurrentDictionary<string, (DateTimeOffset Until, TimeSpan Delay)> _poolBackoff = new(StringComparer.Ordinal);
    // Per pool, the limit the refill last stopped at: logged when it changes, not on every pass.
    private readonly ConcurrentDictionary<string, string> _poolLimit = new(StringComparer.Ordinal);

    /// <summary>What all warm sandboxes together may hold in <c>memory_mb</c> limits (<see cref="EngineOptions.PoolMemoryMb"/>).</summary>
    public int PoolMemoryBudgetMb => options.PoolMemoryMb ?? (int)Math.Min(int.MaxValue, HostMemoryMb / 4);

    /// <summary>Asks the refill to look at the pools again (a claim, a delete, a changed pool).</summary>
    public void SignalPools() => _poolWork.Writer.TryWrite(true);

    public IReadOnlyList<PoolRecord> ListPools(string ns) => [.. store.Pools().Where(p => p.Namespace == ns)];

    /// <summary>A pool by id; 404 otherwise.</summary>
    public PoolRecord GetPool(string id, string ns) =>
        store.Pool(id) is { } pool && pool.Namespace == ns ? pool : throw new EngineException(404, $"sandbox pool '{id}' not found");

    /// <summary>The pool's live sandboxes, warm and claimed, oldest first.</summary>
    public IReadOnlyList<SandboxRecord> PoolMembers(PoolRecord pool)
    {
        ArgumentNullException.ThrowIfNull(pool);
        return [.. store.LiveSandboxes().Where(s => s.PoolId == pool.Id)];
    }

    public PoolRecord CreatePool(PoolSpec spec, string ns)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var pool = new PoolRecord { Id = SandboxIds.NewId('p'), Namespace = ns, CreatedAt = Now };
        Apply(pool, spec);
        pool.UpdatedAt = pool.CreatedAt;
        store.Save(pool);
        logger.LogInformation("pool {Pool} created: image {Image}, {Warm} warm, max {Max}", pool.Id, pool.Image, pool.WarmContainers ?? 0,
            pool.MaxContainers?.ToString(CultureInfo.InvariantCulture) ?? "unbounded");
        SignalPools();
        return pool;
    }

    /// <summary>
    /// <c>PUT</c>: replaces the whole configuration (the network policy only when the body names one). When what a
    /// sandbox boots with changed, the warm ones are recycled onto it; claimed ones keep what they booted with.
    /// </summary>
    public async Task<PoolRecord> UpdatePoolAsync(string id, string ns, PoolSpec spec, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(spec);
        PoolRecord pool;
        await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            pool = GetPool(id, ns);
            var before = BootConfiguration(pool);
            Apply(pool, spec);
            if (BootConfiguration(pool) != before)
            {
                pool.Generation++;
            }

            pool.UpdatedAt = Now;
            store.Save(pool);
        }
        finally
        {
            _allocation.Release();
        }

        _poolBackoff.TryRemove(pool.Id, out _);
        _poolLimit.TryRemove(pool.Id, out _);
        logger.LogInformation("pool {Pool} updated (generation {Generation}): {Warm} warm, max {Max}", pool.Id, pool.Generation, pool.WarmContainers ?? 0,
            pool.MaxContainers?.ToString(CultureInfo.InvariantCulture) ?? "unbounded");
        SignalPools();
        return pool;
    }

    /// <summary>
    /// Deletes a pool and its warm sandboxes. Decision: "in use" (409) means a sandbox claimed from it is still alive in
    /// any state (running, suspended, pending), as in Tensorlake's server: delete those first.
    /// </summary>
    public async Task DeletePoolAsync(string id, string ns, CancellationToken cancellationToken)
    {
        List<SandboxRecord> warm;
        await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var pool = GetPool(id, ns);
            var members = store.LiveSandboxes().Where(s => s.PoolId == pool.Id).ToList();
            var claimed = members.Where(s => !s.Warm).Select(s => s.Id).ToList();
            if (claimed.Count > 0)
            {
                throw new EngineException(409, $"Cannot delete pool '{pool.Id}': active sandbox(es) are using it ({string.Join(", ", claimed)}); delete them first");
            }

            // Gone from the store first: from here no claim or refill can add to it. A crash before the warm sandboxes
            // are removed leaves them to the next start's refill pass, which removes warm sandboxes of missing pools.
            store.DeletePool(pool.Id);
            warm = [.. members.Where(s => _retiring.TryAdd(s.Id, 0))];
        }
        finally
        {
            _allocation.Release();
        }

        foreach (var sandbox in warm)
        {
            await RetireAsync(sandbox, "PoolDeleted").ConfigureAwait(false);
        }

        _poolBackoff.TryRemove(id, out _);
        _poolLimit.TryRemove(id, out _);
        logger.LogInformation("pool {Pool} deleted with its {Count} warm sandbox(es)", id, warm.Count);
    }

    /// <summary>
    /// Claims a sandbox from the pool: a warm one when one is ready (it leaves the pool for good, its idle clock starts
    /// now, with the pool's current <c>timeout_secs</c>); else, below <c>max_containers</c>, one booted for this claim;
    /// else 429. A warm one still booting is waited for rather than booting another beside it.
    /// </summary>
    public async Task<SandboxRecord> ClaimAsync(string id, string ns, CancellationToken cancellationToken)
    {
        using var op = EngineOperation.Start("pool.claim");
        op.Span?.SetTag("hands.pool.id", id);
        try
        {
            var record = await ClaimCoreAsync(id, ns, cancellationToken).ConfigureAwait(false);
            op.Span?.SetTag("hands.sandbox.id", record.Id);
            op.Succeed();
            return record;
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task<SandboxRecord> ClaimCoreAsync(string id, string ns, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            PoolRecord pool;
            string? booting = null;
            await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                pool = GetPool(id, ns);
                var members = store.LiveSandboxes().Where(s => s.PoolId == pool.Id).ToList();
                var current = members.Where(s => s.Warm && s.PoolGeneration == pool.Generation && !_retiring.ContainsKey(s.Id)).ToList();
                if (current.FirstOrDefault(s => s.Status == SandboxStatus.Running) is { } ready)
                {
                    // Nothing else writes a warm record: boots are done (running), and removals are in _retiring.
                    ready.Warm = false;
                    ready.ClaimedAt = Now;
                    ready.TimeoutSecs = pool.TimeoutSecs;
                    store.Save(ready);
                    activity.Touch(ready.Id);
                    logger.LogInformation("pool {Pool}: claimed warm sandbox {Id}", pool.Id, ready.Id);
                    Activity.Current?.SetTag("hands.pool.claim", "warm");
                    SignalPools();
                    return ready;
                }

                // Bounded: a booting one can be claimed by someone else while this waits; after a few, boot one here.
                booting = attempt < 3 ? current.FirstOrDefault(s => s.Status == SandboxStatus.Pending)?.Id : null;
                if (booting is null && pool.MaxContainers is { } max && members.Count >= max)
                {
                    throw AtCapacity(pool, members.Count);
                }
            }
            finally
            {
                _allocation.Release();
            }

            if (booting is not null)
            {
                // Its boot holds its lock: this waits one boot at most, never longer than booting another would take.
                using (await _locks.AcquireAsync(booting, cancellationToken).ConfigureAwait(false))
                {
                }

                continue;
            }

            // None warm: one booted for this claim (CreateAsync checks max_containers again, atomically).
            var record = await CreateAsync(RequestFor(pool), ns, cancellationToken, pool: new PoolMembership(pool.Id, pool.Generation, Warm: false)).ConfigureAwait(false);
            logger.LogInformation("pool {Pool}: no warm sandbox was ready; claimed {Id}, booted for the claim", pool.Id, record.Id);
            Activity.Current?.SetTag("hands.pool.claim", "booted");
            SignalPools();
            return record;
        }
    }

    /// <summary>The refill, until <paramref name="cancellationToken"/>: a pass at start (what a restart left), then one per signal or retry time.</summary>
    public async Task RunPoolsAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan? retry;
            try
            {
                retry = await RefillPoolsAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "pool refill pass failed");
                retry = options.PoolRetryDelay;
            }

            using var due = retry is { } delay ? new CancellationTokenSource(delay, options.TimeProvider) : new CancellationTokenSource();
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, due.Token);
            try
            {
                await _poolWork.Reader.WaitToReadAsync(either.Token).ConfigureAwait(false);
                _poolWork.Reader.TryRead(out _);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // A retry time came: pass again.
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>
    /// One refill pass: removes warm sandboxes that must go (their pool deleted, an older configuration, beyond the
    /// pool's target), then boots what each pool lacks, one at a time. Answers when to pass again for a pool whose
    /// boot failed, or null.
    /// </summary>
    internal async Task<TimeSpan?> RefillPoolsAsync(CancellationToken cancellationToken)
    {
        var leaving = new List<(SandboxRecord Sandbox, string Reason)>();
        await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var pools = store.Pools().ToDictionary(p => p.Id, StringComparer.Ordinal);
            var alive = store.LiveSandboxes();
            foreach (var group in alive.Where(s => s.Warm && s.PoolId is not null && !_retiring.ContainsKey(s.Id)).GroupBy(s => s.PoolId!))
            {
                if (!pools.TryGetValue(group.Key, out var pool))
                {
                    leaving.AddRange(group.Select(s => (s, "PoolDeleted")));
                    continue;
                }

                leaving.AddRange(group.Where(s => s.PoolGeneration != pool.Generation).Select(s => (s, "PoolUpdated")));
                var keep = pool.WarmContainers ?? 0;
                if (pool.MaxContainers is { } max)
                {
                    // A lowered max_containers: claimed sandboxes are in use, so the warm ones give way.
                    keep = Math.Min(keep, Math.Max(0, max - alive.Count(s => s.PoolId == pool.Id && !s.Warm)));
                }

                leaving.AddRange(group.Where(s => s.PoolGeneration == pool.Generation)
                    .OrderBy(s => s.Status == SandboxStatus.Running ? 0 : 1).ThenBy(s => s.CreatedAt).Skip(keep).Select(s => (s, "PoolShrunk")));
            }

            leaving.RemoveAll(l => !_retiring.TryAdd(l.Sandbox.Id, 0));
        }
        finally
        {
            _allocation.Release();
        }

        foreach (var (sandbox, reason) in leaving)
        {
            await RetireAsync(sandbox, reason).ConfigureAwait(false);
        }

        TimeSpan? retry = null;
        foreach (var listed in store.Pools())
        {
            if (_poolBackoff.TryGetValue(listed.Id, out var backoff) && backoff.Until > options.TimeProvider.GetUtcNow())
            {
                retry = Earliest(retry, backoff.Until - options.TimeProvider.GetUtcNow());
                continue;
            }

            while (!cancellationToken.IsCancellationRequested && store.Pool(listed.Id) is { } pool)
            {
                var target = pool.WarmContainers ?? 0;
                var warm = WarmCount(pool);
                if (warm >= target)
                {
                    break;
                }

                var started = options.TimeProvider.GetTimestamp();
                try
                {
                    var record = await CreateAsync(RequestFor(pool), pool.Namespace, cancellationToken, pool: new PoolMembership(pool.Id, pool.Generation, Warm: true)).ConfigureAwait(false);
                    _poolBackoff.TryRemove(pool.Id, out _);
                    _poolLimit.TryRemove(pool.Id, out _);
                    logger.LogInformation("pool {Pool}: warm sandbox {Id} ready in {Ms} ms ({Warm} of {Target} warm)", pool.Id, record.Id,
                        (long)options.TimeProvider.GetElapsedTime(started).TotalMilliseconds, warm + 1, target);
                }
                catch (EngineException ex) when (ex.Status == 429)
                {
                    // A limit (the pool's, the budget, --max-sandboxes): nothing to retry until something changes, which signals.
                    if (!_poolLimit.TryGetValue(pool.Id, out var last) || last != ex.Message)
                    {
                        _poolLimit[pool.Id] = ex.Message;
                        logger.LogInformation("pool {Pool}: refill stops at {Warm} of {Target} warm: {Why}", pool.Id, warm, target, ex.Message);
                    }

                    break;
                }
                catch (EngineException ex) when (ex.Status != 404)
                {
                    var delay = _poolBackoff.TryGetValue(pool.Id, out var previous)
                        ? TimeSpan.FromTicks(Math.Min(previous.Delay.Ticks * 2, MaxPoolRetryDelay.Ticks))
                        : options.PoolRetryDelay;
                    _poolBackoff[pool.Id] = (options.TimeProvider.GetUtcNow() + delay, delay);
                    retry = Earliest(retry, delay);
                    logger.LogWarning("pool {Pool}: a warm sandbox failed to start, trying again in {Seconds:0.#} s: {Error}", pool.Id, delay.TotalSeconds, ex.Message);
                    break;
                }
                catch (EngineException)
                {
                    // The pool was deleted while its sandbox was being made: nothing to refill.
                    break;
                }
            }
        }

        return retry;
    }

    /// <summary>
    /// Refuses (429) a pool's create that would overshoot: its pool gone (404) or changed since the refill read it, at
    /// <c>max_containers</c>, and for a warm one, at the pool's warm target or the warm memory budget.
    /// </summary>
    private void EnsurePoolRoom(PoolMembership membership, string ns, IReadOnlyList<SandboxRecord> alive, int memoryMb)
    {
        var pool = GetPool(membership.PoolId, ns);
        var members = alive.Where(s => s.PoolId == pool.Id).ToList();
        if (pool.MaxContainers is { } max && members.Count >= max)
        {
            throw AtCapacity(pool, members.Count);
        }

        if (!membership.Warm)
        {
            return;
        }

        if (membership.Generation != pool.Generation)
        {
            throw new PoolLimitException($"pool {pool.Id} changed while its warm sandbox was being prepared");
        }

        var warm = members.Count(s => s.Warm && s.PoolGeneration == pool.Generation && !_retiring.ContainsKey(s.Id));
        if (warm >= (pool.WarmContainers ?? 0))
        {
            throw new PoolLimitException($"pool {pool.Id} has its {warm} warm sandbox(es)");
        }

        var held = alive.Where(s => s.Warm).Sum(s => (long)s.MemoryMb);
        if (held + memoryMb > PoolMemoryBudgetMb)
        {
            throw new PoolLimitException($"the warm pool memory budget is spent: warm sandboxes hold {held} MiB of memory limits, another needs {memoryMb}, the budget is {PoolMemoryBudgetMb} MiB (hands engine --pool-memory-mb)");
        }
    }

    private static PoolLimitException AtCapacity(PoolRecord pool, int live) =>
        new($"pool {pool.Id} is at capacity: {live} of its max_containers {pool.MaxContainers} sandboxes are alive (warm and claimed); delete a claimed one or raise max_containers");

    /// <summary>Removes a warm sandbox (waiting for its boot, if it is booting); one claimed meanwhile is left alone.</summary>
    private async Task RetireAsync(SandboxRecord warm, string reason)
    {
        try
        {
            using (await _locks.AcquireAsync(warm.Id, CancellationToken.None).ConfigureAwait(false))
            {
                if (store.Sandbox(warm.Id) is { IsAlive: true, Warm: true } record)
                {
                    await TearDownAsync(record, CancellationToken.None).ConfigureAwait(false);
                    SandboxLifecycle.MoveTo(record, SandboxState.Terminated, Now, reason);
                    store.Save(record);
                    logger.LogInformation("pool {Pool}: warm sandbox {Id} removed ({Reason})", record.PoolId, record.Id, reason);
                }
            }
        }
        finally
        {
            _retiring.TryRemove(warm.Id, out _);
        }
    }

    private int WarmCount(PoolRecord pool) =>
        store.LiveSandboxes().Count(s => s.PoolId == pool.Id && s.Warm && s.PoolGeneration == pool.Generation && !_retiring.ContainsKey(s.Id));

    private static TimeSpan Earliest(TimeSpan? a, TimeSpan b) => a is { } x && x < b ? x : b;

    /// <summary>What a pool's sandbox is created with.</summary>
    private static CreateSandboxRequest RequestFor(PoolRecord pool) => new()
    {
        Image = pool.Image,
        Resources = new SandboxResources { Cpus = pool.Cpus, MemoryMb = pool.MemoryMb, DiskMb = pool.DiskMb },
        TimeoutSecs = pool.TimeoutSecs,
        Entrypoint = pool.Entrypoint is null ? null : [.. pool.Entrypoint],
        Network = pool.Network,
    };

    /// <summary>Validates <paramref name="spec"/> with the rules of a create, then sets it on <paramref name="pool"/>.</summary>
    private void Apply(PoolRecord pool, PoolSpec spec)
    {
        if (spec.MaxContainers is < 0 || spec.WarmContainers is < 0)
        {
            throw new EngineException(400, "max_containers and warm_containers must be 0 or more");
        }

        if (spec is { WarmContainers: { } warm, MaxContainers: { } max } && warm > max)
        {
            throw new EngineException(400, $"warm_containers ({warm}) cannot exceed max_containers ({max})");
        }

        var request = new CreateSandboxRequest
        {
            Image = spec.Image,
            Resources = new SandboxResources { Cpus = spec.Cpus, MemoryMb = spec.MemoryMb, DiskMb = spec.DiskMb },
            TimeoutSecs = spec.TimeoutSecs,
            Entrypoint = spec.Entrypoint,
        };
        Validate(request);
        // An unknown image is refused now, not at every warm boot.
        var image = images.Resolve(spec.Image);
        pool.Image = string.IsNullOrEmpty(spec.Image) ? image.Name : spec.Image;
        pool.Cpus = spec.Cpus;
        pool.MemoryMb = spec.MemoryMb;
        pool.DiskMb = spec.DiskMb;
        pool.TimeoutSecs = spec.TimeoutSecs;
        pool.Entrypoint = spec.Entrypoint;
        pool.MaxContainers = spec.MaxContainers;
        pool.WarmContainers = spec.WarmContainers;
        if (spec.NetworkSet)
        {
            pool.Network = spec.Network;
        }
    }

    /// <summary>Everything a sandbox boots with: when it changes, warm sandboxes are recycled. The timeout is applied at the claim.</summary>
    private static string BootConfiguration(PoolRecord pool) => string.Join('\n',
        pool.Image,
        pool.Cpus.ToString("R", CultureInfo.InvariantCulture),
        pool.MemoryMb.ToString(CultureInfo.InvariantCulture),
        pool.DiskMb?.ToString(CultureInfo.InvariantCulture) ?? "-",
        pool.Entrypoint is null ? "-" : JsonSerializer.Serialize(pool.Entrypoint, SandboxesJsonContext.Default.ListString),
        pool.Network is null ? "-" : JsonSerializer.Serialize(pool.Network, SandboxesJsonContext.Default.NetworkPolicy));
}
