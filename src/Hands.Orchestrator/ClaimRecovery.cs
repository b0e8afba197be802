using System.Collections.Concurrent;
using Hands.Common;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>What start-up did with one claim a previous orchestrator left.</summary>
public enum ClaimRecoveryOutcome
{
    /// <summary>Its lease was cut to a second, so the control plane queues the item again at once.</summary>
    Released,

    /// <summary>The item's worker runs in the session's sandbox and holds (or takes) the lease: nothing was touched.</summary>
    LeftToWorker,

    /// <summary>Nothing held the item any more (it was queued again, stopping or stopped, or is gone): nothing to release.</summary>
    NothingHeld,

    /// <summary>The record was older than <see cref="OrchestratorOptions.ClaimRecordLifetime"/>: dropped without a call.</summary>
    Expired,

    /// <summary>It could not be settled now (the API or the sandbox provider failed, or time ran out): kept for the next start.</summary>
    Kept,
}

/// <summary>One recorded claim and what became of it.</summary>
/// <param name="Claim">The record.</param>
/// <param name="Outcome">What start-up did.</param>
/// <param name="Detail">Why, in words (for the log).</param>
public sealed record RecoveredClaim(ClaimRecord Claim, ClaimRecoveryOutcome Outcome, string Detail);

/// <summary>What start-up did with the claims a previous orchestrator left.</summary>
/// <param name="Claims">Each recorded claim and its outcome.</param>
/// <param name="RequeuedBy">When the last released lease lapses (from the TTL the control plane granted); null if none was released.</param>
public sealed record ClaimRecoverySummary(IReadOnlyList<RecoveredClaim> Claims, DateTimeOffset? RequeuedBy)
{
    /// <summary>Nothing was recorded (or claims are not recorded).</summary>
    public static ClaimRecoverySummary None { get; } = new([], null);

    /// <summary>How many claims had <paramref name="outcome"/>.</summary>
    public int Count(ClaimRecoveryOutcome outcome) => Claims.Count(c => c.Outcome == outcome);
}

/// <summary>
/// Settles, at start and under the orchestrator lock, the claims a previous orchestrator recorded and never saw through
/// (it was killed between the poll and the hand-off): for each, if the item's worker is running in the session's
/// sandbox it is left alone (that worker has the lease, or takes it with its first heartbeat); otherwise the lease is
/// released at once, so the item is queued again within about a second instead of after its whole TTL.
/// </summary>
/// <remarks>
/// The release is a heartbeat with <c>expected_last_heartbeat=NO_HEARTBEAT</c> and <c>desired_ttl_seconds=1</c>; if
/// that is refused with 412, the answer's <c>current_state</c> decides: a queued, stopping or stopped item needs
/// nothing, anything else gets one more heartbeat with <c>expected_last_heartbeat=current_state.last_heartbeat</c> and
/// the same TTL. The local control plane lets <c>NO_HEARTBEAT</c> take over a held lease (that is how a worker takes it
/// from the orchestrator), so there the first heartbeat releases; the reference compares it like any other value and
/// answers 412 once the item has a heartbeat, so there the second one does. Either way the lease ends up a second long
/// and nobody renews it.
/// </remarks>
internal sealed class ClaimRecovery(ManagedAgentsClient environment, TensorlakeClient sandboxes, OrchestratorOptions options, ClaimRecords records)
{
    private const int ReleaseTtlSeconds = 1;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Settles every record; never throws (what fails is logged and kept), and returns within <see cref="OrchestratorOptions.ClaimRecoveryTimeout"/> plus one call.</summary>
    public async Task<ClaimRecoverySummary> RunAsync()
    {
        IReadOnlyList<ClaimRecord> claims;
        try
        {
            claims = records.ReadAll();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            options.Logger.LogError("the claims a previous orchestrator left in {Directory} cannot be read: {Error}", records.Directory, ex.Message);
            return ClaimRecoverySummary.None;
        }

        if (claims.Count == 0)
        {
            return ClaimRecoverySummary.None;
        }

        using var deadline = new CancellationTokenSource(options.ClaimRecoveryTimeout, options.TimeProvider);
        var results = new ConcurrentBag<(RecoveredClaim Claim, DateTimeOffset? RequeuedBy)>();
        await Parallel.ForEachAsync(claims, new ParallelOptions { MaxDegreeOfParallelism = options.MaxConcurrentSpawns },
            async (claim, _) => results.Add(await RecoverAsync(claim, deadline.Token).ConfigureAwait(false))).ConfigureAwait(false);
        var requeuedBy = results.Select(r => r.RequeuedBy).Where(t => t is not null).Max();
        return new ClaimRecoverySummary([.. results.Select(r => r.Claim).OrderBy(c => c.Claim.WorkId, StringComparer.Ordinal)], requeuedBy);
    }

    private async Task<(RecoveredClaim, DateTimeOffset?)> RecoverAsync(ClaimRecord claim, CancellationToken deadline)
    {
        var age = options.TimeProvider.GetUtcNow() - claim.ClaimedAt;
        if (age > options.ClaimRecordLifetime)
        {
            records.Drop(claim.WorkId);
            return (Settled(claim, ClaimRecoveryOutcome.Expired, $"dropped, claimed {age.TotalMinutes:0} minutes ago: its lease has lapsed"), null);
        }

        if (!string.Equals(claim.EnvironmentId, options.EnvironmentId, StringComparison.Ordinal))
        {
            // Only a lock file shared on purpose across environments gets here; that environment's orchestrator settles it.
            return (Kept(claim, $"kept for environment {claim.EnvironmentId}'s orchestrator"), null);
        }

        try
        {
            deadline.ThrowIfCancellationRequested();
            if (await WorkerRunsAsync(claim, deadline).ConfigureAwait(false))
            {
                records.Drop(claim.WorkId);
                return (Settled(claim, ClaimRecoveryOutcome.LeftToWorker, "left to its worker"), null);
            }

            var (outcome, detail, requeuedBy) = await ReleaseAsync(claim, deadline).ConfigureAwait(false);
            records.Drop(claim.WorkId);
            return (Settled(claim, outcome, detail), requeuedBy);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return (Kept(claim, $"not settled within {options.ClaimRecoveryTimeout.TotalSeconds:0} s; kept for the next start"), null);
        }
        catch (ManagedAgentsException ex) when (ex.Status == 404)
        {
            records.Drop(claim.WorkId);
            return (Settled(claim, ClaimRecoveryOutcome.NothingHeld, "nothing to release: the item is gone"), null);
        }
        catch (Exception ex) when (ex is HandsException or HttpRequestException or TimeoutException or OperationCanceledException)
        {
            // A lease that cannot be cut short still lapses at its TTL; trying again next start costs nothing, and the
            // record's lifetime ends the tries.
            return (Kept(claim, $"kept for the next start: {ex.Message}"), null);
        }
    }

    /// <summary>True when the item's worker process runs in the session's sandbox and has had its secret.</summary>
    private async Task<bool> WorkerRunsAsync(ClaimRecord claim, CancellationToken cancellationToken)
    {
        SandboxInfo sandbox;
        try
        {
            sandbox = await sandboxes.GetAsync(SandboxNames.ForSession(claim.SessionId), cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return false;
        }

        if (sandbox.Status != SandboxStatus.Running)
        {
            // A suspended worker cannot heartbeat; a pending sandbox has none yet.
            return false;
        }

        ProcessInfo process;
        try
        {
            process = await sandboxes.Proxy(sandbox).GetProcessAsync(WorkerLauncher.ProcessName(claim.WorkId), cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return false;
        }

        // Stdin still open: the previous orchestrator died before writing the secret, so this worker never heartbeats.
        // The next spawn finds it and writes the new claim's secret (WorkerLauncher).
        return process.Status == "running" && !process.StdinWritable;
    }

    private async Task<(ClaimRecoveryOutcome, string, DateTimeOffset?)> ReleaseAsync(ClaimRecord claim, CancellationToken cancellationToken)
    {
        WorkHeartbeat beat;
        try
        {
            beat = await HeartbeatAsync(claim, WorkOperations.NoHeartbeat, cancellationToken).ConfigureAwait(false);
        }
        catch (HeartbeatPreconditionFailedException ex)
        {
            if (ex.CurrentState is not { } current)
            {
                throw new OrchestratorException("the heartbeat was refused (412) without error.details.current_state", ex);
            }

            if (current.State is WorkState.Queued or WorkState.Stopping or WorkState.Stopped)
            {
                return (ClaimRecoveryOutcome.NothingHeld, $"nothing to release: the item is {current.State}", null);
            }

            if (current.LastHeartbeat is not { Length: > 0 } last)
            {
                throw new OrchestratorException($"the heartbeat was refused (412) for a {current.State} item without a last_heartbeat", ex);
            }

            try
            {
                beat = await HeartbeatAsync(claim, last, cancellationToken).ConfigureAwait(false);
            }
            catch (HeartbeatPreconditionFailedException again)
            {
                // Renewed between the two heartbeats: someone is alive and holding it (or it lapsed meanwhile).
                return again.CurrentState?.State is WorkState.Queued or WorkState.Stopping or WorkState.Stopped
                    ? (ClaimRecoveryOutcome.NothingHeld, $"nothing to release: the item is {again.CurrentState.State}", null)
                    : (ClaimRecoveryOutcome.LeftToWorker, "left to whoever is renewing its lease", null);
            }
        }

        if (beat.State is WorkState.Stopping or WorkState.Stopped)
        {
            // Once stopping the server compares nothing and extends nothing: there was no lease to release.
            return (ClaimRecoveryOutcome.NothingHeld, $"nothing to release: the item is {beat.State}", null);
        }

        var ttl = TimeSpan.FromSeconds(Math.Max(ReleaseTtlSeconds, beat.TtlSeconds));
        return (ClaimRecoveryOutcome.Released, "released", options.TimeProvider.GetUtcNow() + ttl);
    }

    private Task<WorkHeartbeat> HeartbeatAsync(ClaimRecord claim, string expected, CancellationToken cancellationToken) =>
        environment.Work.HeartbeatAsync(claim.EnvironmentId, claim.WorkId, expected, desiredTtlSeconds: ReleaseTtlSeconds, timeout: CallTimeout,
            cancellationToken: cancellationToken);

    private RecoveredClaim Settled(ClaimRecord claim, ClaimRecoveryOutcome outcome, string detail)
    {
        options.Logger.LogInformation("recovered claim of work {Work} (session {Session}) from a previous orchestrator: {Outcome}",
            claim.WorkId, claim.SessionId, detail);
        return new RecoveredClaim(claim, outcome, detail);
    }

    private RecoveredClaim Kept(ClaimRecord claim, string detail)
    {
        options.Logger.LogWarning("claim of work {Work} (session {Session}) from a previous orchestrator not recovered: {Why}",
            claim.WorkId, claim.SessionId, detail);
        return new RecoveredClaim(claim, ClaimRecoveryOutcome.Kept, detail);
    }
}
