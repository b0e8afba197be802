using Hands.Sandboxes.Client;
using Hands.Sandboxes.Concurrency;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>How a session's sandbox was obtained.</summary>
public enum SandboxAcquisition
{
    /// <summary>A running sandbox of the session was reused (its files are there).</summary>
    Reused,

    /// <summary>A new sandbox was made from the image.</summary>
    Created,

    /// <summary>A warm sandbox was claimed from <see cref="OrchestratorOptions.SandboxPool"/> and named for the session.</summary>
    Claimed,

    /// <summary>The session's suspended sandbox was resumed with its files, processes and caches.</summary>
    Resumed,

    /// <summary>The session's suspended sandbox was replaced by a fresh one (<c>RESUME_SUSPENDED_SESSIONS=false</c>).</summary>
    Recreated,
}

/// <summary>
/// Get-or-create of the one sandbox a session runs in, named by <see cref="SandboxNames.ForSession"/>. Idempotent:
/// callers in this process are serialized per session, and a concurrent create elsewhere shows up as the provider's
/// 409 on the name, after which the existing sandbox is used. With <see cref="OrchestratorOptions.SandboxPool"/>, a
/// new sandbox is claimed from that pool and named (a claim takes no name); a full pool falls back to a create.
/// </summary>
public sealed class SessionSandboxes(TensorlakeClient sandboxes, OrchestratorOptions options)
{
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(120);
    private static readonly TimeSpan StatusPoll = TimeSpan.FromMilliseconds(100);
    private readonly KeyedLock<string> _gates = new(StringComparer.Ordinal);

    /// <summary>The session's running sandbox, and how it was obtained.</summary>
    public async Task<(SandboxInfo Sandbox, SandboxAcquisition How)> AcquireAsync(string sessionId, CancellationToken cancellationToken)
    {
        var name = SandboxNames.ForSession(sessionId);
        using (await _gates.AcquireAsync(name, cancellationToken).ConfigureAwait(false))
        {
            return await AcquireLockedAsync(name, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<(SandboxInfo, SandboxAcquisition)> AcquireLockedAsync(string name, CancellationToken cancellationToken)
    {
        var existing = await FindAsync(name, cancellationToken).ConfigureAwait(false);
        if (existing is not null && existing.Status is SandboxStatus.Pending or SandboxStatus.Snapshotting or SandboxStatus.Suspending)
        {
            existing = await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running, SandboxStatus.Suspended, SandboxStatus.Terminated],
                SettleTimeout, StatusPoll, cancellationToken).ConfigureAwait(false);
        }

        switch (existing?.Status)
        {
            case SandboxStatus.Running:
                return (existing, SandboxAcquisition.Reused);
            case SandboxStatus.Suspended when options.ResumeSuspendedSessions:
                options.Logger.LogInformation("resuming suspended sandbox {Name}", name);
                await sandboxes.ResumeAsync(name, cancellationToken).ConfigureAwait(false);
                return (await WaitRunningAsync(name, cancellationToken).ConfigureAwait(false), SandboxAcquisition.Resumed);
            case SandboxStatus.Suspended:
                options.Logger.LogInformation("replacing suspended sandbox {Name} with a fresh one (RESUME_SUSPENDED_SESSIONS=false)", name);
                await sandboxes.DeleteAsync(existing.Id ?? existing.SandboxId ?? name, cancellationToken).ConfigureAwait(false);
                return ((await ClaimOrCreateAsync(name, cancellationToken).ConfigureAwait(false)).Sandbox, SandboxAcquisition.Recreated);
            default:
                return await ClaimOrCreateAsync(name, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A new sandbox named <paramref name="name"/>: claimed from the pool when there is one with room, else created.</summary>
    private async Task<(SandboxInfo Sandbox, SandboxAcquisition How)> ClaimOrCreateAsync(string name, CancellationToken cancellationToken)
    {
        if (options.SandboxPool is { Length: > 0 } pool && await ClaimAsync(pool, name, cancellationToken).ConfigureAwait(false) is { } claimed)
        {
            return claimed;
        }

        return (await CreateAsync(name, cancellationToken).ConfigureAwait(false), SandboxAcquisition.Created);
    }

    /// <summary>
    /// Claims a sandbox from <paramref name="pool"/> and names it <paramref name="name"/>; null when the pool has no room
    /// (the caller creates one instead). A claimed sandbox that cannot be named is given back (deleted), never left
    /// unnamed: nothing would find it again. When the name was taken meanwhile, the sandbox that has it is the session's.
    /// </summary>
    private async Task<(SandboxInfo Sandbox, SandboxAcquisition How)?> ClaimAsync(string pool, string name, CancellationToken cancellationToken)
    {
        CreateSandboxResponse claim;
        try
        {
            claim = await sandboxes.ClaimAsync(pool, cancellationToken).ConfigureAwait(false);
        }
        catch (PoolAtCapacityException ex)
        {
            options.Logger.LogInformation("pool {Pool} has no room ({Why}); creating {Name} outside it", pool, ex.ErrorMessage, name);
            return null;
        }
        catch (PoolNotFoundException ex)
        {
            throw new OrchestratorException($"HANDS_SANDBOX_POOL={pool}: the sandbox provider has no such pool ({ex.ErrorMessage}); create it (hands sandbox pool create) or unset the variable", ex);
        }

        var id = claim.CanonicalId;
        if (claim.Status is SandboxStatus.Timeout or SandboxStatus.Terminated || claim is { Status: SandboxStatus.Pending, PendingReason: PendingReason.PoolAtCapacity })
        {
            // Tensorlake's server queues a claim on a full pool: waiting would hold the session for as long as the pool stays full.
            await DeleteQuietlyAsync(id).ConfigureAwait(false);
            options.Logger.LogInformation("pool {Pool} answered {Status}{Reason}; creating {Name} outside it", pool, claim.Status,
                claim.PendingReason is { } reason ? $" ({reason})" : "", name);
            return null;
        }

        try
        {
            await sandboxes.UpdateAsync(id, new UpdateSandboxRequest { Name = name }, cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.Status == 409)
        {
            // The session's sandbox was made meanwhile (another delivery, another orchestrator): that one is the session's.
            await DeleteQuietlyAsync(id).ConfigureAwait(false);
            options.Logger.LogInformation("sandbox {Name} was created concurrently; gave back {Id} claimed from pool {Pool}", name, id, pool);
            return (await WaitRunningAsync(name, cancellationToken).ConfigureAwait(false), SandboxAcquisition.Reused);
        }
        catch
        {
            await DeleteQuietlyAsync(id).ConfigureAwait(false);
            throw;
        }

        options.Logger.LogInformation("claimed sandbox {Id} from pool {Pool} as {Name}", id, pool, name);
        return (await WaitRunningAsync(name, cancellationToken).ConfigureAwait(false), SandboxAcquisition.Claimed);
    }

    /// <summary>Deletes a sandbox this call made and cannot use; a failure is logged, never thrown over the reason it is deleted.</summary>
    private async Task DeleteQuietlyAsync(string id)
    {
        try
        {
            await sandboxes.DeleteAsync(id, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TensorlakeException ex)
        {
            options.Logger.LogWarning("could not delete sandbox {Id}, claimed and not used: {Error}", id, ex.Message);
        }
    }

    private async Task<SandboxInfo?> FindAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            var info = await sandboxes.GetAsync(name, cancellationToken).ConfigureAwait(false);
            return info.Status is SandboxStatus.Terminated or SandboxStatus.Timeout ? null : info;
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    private async Task<SandboxInfo> CreateAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            await sandboxes.CreateAsync(new CreateSandboxRequest
            {
                Name = name,
                Image = options.Image,
                Resources = new SandboxResources { Cpus = options.Cpus, MemoryMb = options.MemoryMb },
                TimeoutSecs = options.SandboxTimeoutSeconds > 0 ? options.SandboxTimeoutSeconds : null,
            }, cancellationToken).ConfigureAwait(false);
            options.Logger.LogInformation("created sandbox {Name}", name);
        }
        catch (TensorlakeException ex) when (ex.Status == 409)
        {
            // Another orchestrator (or delivery) created it first: same session, same sandbox.
            options.Logger.LogInformation("sandbox {Name} was created concurrently; using it", name);
        }

        return await WaitRunningAsync(name, cancellationToken).ConfigureAwait(false);
    }

    private async Task<SandboxInfo> WaitRunningAsync(string name, CancellationToken cancellationToken)
    {
        var info = await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running, SandboxStatus.Terminated], SettleTimeout,
            StatusPoll, cancellationToken).ConfigureAwait(false);
        return info.Status == SandboxStatus.Running
            ? info
            : throw new OrchestratorException($"sandbox {name} did not start: {info.TerminationReason ?? info.Status} {info.ErrorDetails?.ToString()}".TrimEnd());
    }
}
