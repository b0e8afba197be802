using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;

namespace Hands.Orchestrator;

/// <summary>How a lease hand-off ended.</summary>
public enum HandOffResult
{
    /// <summary>The worker's first heartbeat took the lease (the orchestrator's next one was refused with 412).</summary>
    HandedOff,

    /// <summary>The item was stopped meanwhile (the session ended or was archived): nothing left to hand over.</summary>
    ItemStopped,

    /// <summary>The worker exited before it took the lease.</summary>
    WorkerExited,

    /// <summary>The worker did not take the lease within <see cref="OrchestratorOptions.HandOffTimeout"/>.</summary>
    TimedOut,
}

/// <summary>How a hand-off ended, and the lease's last heartbeat as the orchestrator knows it (what a release must send).</summary>
/// <param name="Result">How it ended.</param>
/// <param name="LastHeartbeat">The echo of the orchestrator's latest successful renewal.</param>
public readonly record struct HandOff(HandOffResult Result, string LastHeartbeat);

/// <summary>
/// Holds a claimed item's lease until the worker in the sandbox takes it over (the trap of anthropic-sdk-python #1779:
/// a lease dropped before the worker connects leaves the session stuck in <c>requires_action</c>). The orchestrator
/// claims with <c>NO_HEARTBEAT</c> before the worker starts and renews on a short interval; the worker's own first
/// heartbeat (also <c>NO_HEARTBEAT</c>) takes the lease over, so the orchestrator's next renewal gets 412 — the signal
/// that the hand-off is complete.
/// </summary>
public sealed class LeaseHandOff(ManagedAgentsClient environmentClient, OrchestratorOptions options)
{
    private const int ReleaseTtlSeconds = 1;

    /// <summary>Claims the lease; call before the worker starts. Returns the echo for the next renewal, or null if the item is stopped.</summary>
    public async Task<string?> ClaimAsync(WorkItem item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var beat = await environmentClient.Work.HeartbeatAsync(item.EnvironmentId, item.Id, WorkOperations.NoHeartbeat,
            timeout: TimeSpan.FromSeconds(10), cancellationToken: cancellationToken).ConfigureAwait(false);
        return beat.State is WorkState.Stopping or WorkState.Stopped ? null : beat.LastHeartbeat;
    }

    /// <summary>Renews the lease until the worker holds it, the item stops, the worker exits or time runs out.</summary>
    public async Task<HandOff> HoldUntilTakenAsync(WorkItem item, string lastHeartbeat, SandboxProxyClient sandbox, string workerProcess,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var deadline = options.TimeProvider.GetUtcNow() + options.HandOffTimeout;
        var expected = lastHeartbeat;
        while (true)
        {
            await Task.Delay(options.HandOffHeartbeatInterval, options.TimeProvider, cancellationToken).ConfigureAwait(false);
            HandOffResult? ended;
            (ended, expected) = await RenewAsync(item, expected, cancellationToken).ConfigureAwait(false);
            if (ended is { } result)
            {
                return new HandOff(result, expected);
            }

            if (!await WorkerLauncher.IsRunningAsync(sandbox, workerProcess, cancellationToken).ConfigureAwait(false))
            {
                // A worker that served a whole short turn, stopped its item and exited between two renewals did take the
                // lease. One more renewal tells it from one that never did; it needs nothing but the environment key
                // (which cannot read the item itself: GET work is the API key's).
                (ended, expected) = await RenewAsync(item, expected, cancellationToken).ConfigureAwait(false);
                return new HandOff(ended ?? HandOffResult.WorkerExited, expected);
            }

            if (options.TimeProvider.GetUtcNow() > deadline)
            {
                return new HandOff(HandOffResult.TimedOut, expected);
            }
        }
    }

    /// <summary>
    /// One renewal: null while the orchestrator still holds the lease (or the API is briefly away), else how the
    /// hand-off ended; with the echo for the next renewal.
    /// </summary>
    private async Task<(HandOffResult? Ended, string Expected)> RenewAsync(WorkItem item, string expected, CancellationToken cancellationToken)
    {
        try
        {
            var beat = await environmentClient.Work.HeartbeatAsync(item.EnvironmentId, item.Id, expected,
                timeout: TimeSpan.FromSeconds(10), cancellationToken: cancellationToken).ConfigureAwait(false);
            return beat.State is WorkState.Stopping or WorkState.Stopped ? (HandOffResult.ItemStopped, expected) : (null, beat.LastHeartbeat ?? expected);
        }
        catch (HeartbeatPreconditionFailedException ex)
        {
            // Someone else renewed: the worker took over. A queued item (lease lapsed) is not a hand-off.
            return (ex.CurrentState?.State == WorkState.Queued ? HandOffResult.TimedOut : HandOffResult.HandedOff, expected);
        }
        catch (ManagedAgentsException ex) when (!ex.IsFatal)
        {
            // Transient: the lease lives for its TTL; try again on the next tick.
            return (null, expected);
        }
    }

    /// <summary>
    /// Gives the item back for another try: the lease is renewed with the shortest TTL and not renewed again, so it
    /// lapses within a second and the item is queued for the next claim. Best effort: a lease that cannot be
    /// shortened lapses at its normal TTL.
    /// </summary>
    public async Task ReleaseAsync(WorkItem item, string? lastHeartbeat, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        if (lastHeartbeat is null)
        {
            return;
        }

        try
        {
            await environmentClient.Work.HeartbeatAsync(item.EnvironmentId, item.Id, lastHeartbeat, desiredTtlSeconds: ReleaseTtlSeconds,
                timeout: TimeSpan.FromSeconds(10), cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        catch (ManagedAgentsException)
        {
            // Someone else holds it, or the API is away: either way it is no longer ours to release.
        }
    }
}
