using Hands.Engine.Hosting;
using Hands.Engine.Network;
using Hands.Engine.Storage;
using Hands.Engine.Telemetry;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

internal sealed partial class SandboxManager
{
    /// <summary>
    /// Suspends a named sandbox: tier 1 freezes it (runc pause, RAM stays resident); <paramref name="hibernate"/> (or a
    /// longer idle, see <see cref="EngineOptions.HibernateAfter"/>) dumps it with CRIU and stops it (tier 2).
    /// Answers true when this call suspended it (202), false when it already was (200).
    /// </summary>
    public async Task<bool> SuspendAsync(string idOrName, string ns, bool hibernate, CancellationToken cancellationToken)
    {
        var found = Get(idOrName, ns);
        if (!found.IsSuspendable)
        {
            throw new EngineException(400, $"sandbox {found.Id} is ephemeral and cannot be suspended (it would terminate on idle); give it a name (PATCH {{\"name\": ...}}) to make it suspendable");
        }

        if (hibernate && !CriuAvailable)
        {
            throw new EngineException(400, $"hibernation needs CRIU: {CriuProblem}");
        }

        return await LockedAsync(found.Id, ns, async record =>
        {
            switch (SandboxLifecycle.StateOf(record))
            {
                case SandboxState.Hibernated:
                case SandboxState.Frozen when !hibernate:
                    return false;
                case SandboxState.Frozen:
                    await HibernateAsync(record, cancellationToken).ConfigureAwait(false);
                    return true;
                case SandboxState.Running:
                    if (hibernate)
                    {
                        await HibernateAsync(record, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await FreezeAsync(record, cancellationToken).ConfigureAwait(false);
                    }

                    return true;
                default:
                    throw new EngineException(400, $"sandbox {record.Id} is {record.Status}; only a running sandbox can be suspended");
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task FreezeAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        using var op = EngineOperation.Start("suspend", record, "freeze");
        try
        {
            await FreezeCoreAsync(record, cancellationToken).ConfigureAwait(false);
            op.Succeed();
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task FreezeCoreAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        // A frozen sandbox may be hibernated later without being thawed: scrub now, while the daemon can answer.
        await SandboxDaemonClient.ScrubAsync(SlotOf(record).SandboxAddress, record.DaemonToken, cancellationToken).ConfigureAwait(false);
        await runtime.PauseAsync(record.Id, cancellationToken).ConfigureAwait(false);
        SandboxLifecycle.MoveTo(record, SandboxState.Frozen, Now);
        store.Save(record);
        logger.LogInformation("sandbox {Id} frozen", record.Id);
    }

    /// <summary>
    /// Decision: the network lock of a CRIU dump (a hibernation, a memory checkpoint) is the veth's host end, down from
    /// before the dump until the sandbox runs again (after the wake's restore, or at the checkpoint's end), not CRIU's
    /// nftables lock, which adds a table in the sandbox's namespace and deletes it again at each end: in a wake's CRIU
    /// log the add took 11 ms and the delete 16 ms, and the restore 95 ms in all against 49 ms without the lock. What the
    /// lock is for holds either way: no packet from outside reaches the namespace while its sockets are gone or half
    /// restored, where the kernel would answer it with a reset and kill the connection. The veth is the namespace's only
    /// way out, and while its host end is down the engine's blackhole route for the sandbox range
    /// (<see cref="HostFirewall"/>) keeps the host's packets for it from leaving by the default route. Loopback
    /// connections inside the sandbox need no lock: CRIU turns TCP repair off only after every task has restored every
    /// socket (its CR_STATE_RESTORE_SIGCHLD barrier), so each window probe finds its peer. Every bundle's CRIU
    /// configuration says <c>network-lock skip</c> (<see cref="StandardCriuConfig"/>; a fork's adds <c>tcp-close</c>),
    /// and a restore uses what its image records. <c>SuspendResumeTests</c> and <c>SnapshotForkTests</c> keep an
    /// outside connection (written to while the sandbox sleeps) and a loopback one talking across both.
    /// </summary>
    private Task UseLinkAsNetworkLockAsync(SandboxRecord record) => SandboxNetwork.DisconnectAsync(SlotOf(record), CancellationToken.None);

    /// <summary>Tier 2: CRIU dump to the sandbox's hibernation directory, then the container is gone; mounts and network stay.</summary>
    private async Task HibernateAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        using var op = EngineOperation.Start("suspend", record, "hibernate");
        op.Span?.SetTag("hands.sandbox.suspend.from", SandboxLifecycle.StateOf(record) == SandboxState.Frozen ? "freeze" : "running");
        try
        {
            await HibernateCoreAsync(record, cancellationToken).ConfigureAwait(false);
            op.Succeed();
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task HibernateCoreAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var paths = PathsOf(record.Id);
        if (Directory.Exists(paths.Hibernation))
        {
            Directory.Delete(paths.Hibernation, recursive: true);
        }

        if (SandboxLifecycle.StateOf(record) == SandboxState.Running)
        {
            await SandboxDaemonClient.ScrubAsync(SlotOf(record).SandboxAddress, record.DaemonToken, cancellationToken).ConfigureAwait(false);
        }

        SandboxLifecycle.MoveTo(record, SandboxState.Suspending, Now);
        store.Save(record);
        try
        {
            // From here until the wake connects it again (a restart that finds the dump cut short connects it).
            await UseLinkAsNetworkLockAsync(record).ConfigureAwait(false);

            // Not cancellable once begun: a dump cut short can leave the container frozen with the record saying
            // suspending; a request that went away or an engine shutting down waits for the dump instead.
            await runtime.CheckpointAsync(record.Id, paths.Hibernation, paths.CriuWork, leaveRunning: false, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is EngineCommandException or IOException)
        {
            // The dump failed: CRIU resumed (or left frozen) what it had stopped, so the sandbox goes back to where it
            // was, connected again. The partial image goes with it: on a full volume it holds the last blocks. Judged
            // before that.
            var full = FilledTheVolume(ex);
            DeleteQuietly(paths.Hibernation);
            DeleteQuietly(paths.CriuWork);
            await SandboxNetwork.ConnectAsync(SlotOf(record), CancellationToken.None).ConfigureAwait(false);
            SandboxLifecycle.MoveTo(record, SandboxLifecycle.SuspendingFrom(record), Now);
            store.Save(record);
            var outcome = $"nothing was kept and sandbox {record.Id} is still {(record.SuspendTier is null ? "running" : record.SuspendTier)}";
            throw full
                ? VolumeFull($"CRIU's hibernation image of sandbox {record.Id}", outcome, ex)
                : new EngineException(500, $"hibernating sandbox {record.Id} failed; {outcome}: {ex.Message}", ex);
        }

        // The dump is complete: from here the image is the sandbox.
        await runtime.DeleteAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
        CrashPoints.Reach(CrashPoints.HibernateDumped);
        SandboxLifecycle.MoveTo(record, SandboxState.Hibernated, Now);
        store.Save(record);
        logger.LogInformation("sandbox {Id} hibernated", record.Id);
    }

    /// <summary>Resumes a suspended sandbox (thaw or CRIU restore). True when this call resumed it (202), false when it was running (200).</summary>
    public async Task<bool> ResumeAsync(string idOrName, string ns, CancellationToken cancellationToken)
    {
        return await LockedAsync(idOrName, ns, async record =>
        {
            switch (SandboxLifecycle.StateOf(record))
            {
                case SandboxState.Running:
                    return false;
                case SandboxState.Frozen or SandboxState.Hibernated:
                    await WakeAsync(record, cancellationToken).ConfigureAwait(false);
                    return true;
                default:
                    throw new EngineException(400, $"sandbox {record.Id} is {record.Status}; only a suspended sandbox can be resumed");
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Makes sure the sandbox is running (the ingress's wake-on-request); 503 when it cannot be.</summary>
    public async Task<SandboxRecord> EnsureRunningAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var state = SandboxLifecycle.StateOf(record);
        if (state == SandboxState.Running)
        {
            return record;
        }

        if (state is SandboxState.Frozen or SandboxState.Hibernated)
        {
            await ResumeAsync(record.Id, record.Namespace, cancellationToken).ConfigureAwait(false);
            return Get(record.Id, record.Namespace);
        }

        if (state == SandboxState.Snapshotting)
        {
            // A snapshot holds the lock briefly; wait for it rather than failing the request.
            using (await _locks.AcquireAsync(record.Id, cancellationToken).ConfigureAwait(false))
            {
            }

            // Once, not in a loop: a record still snapshotting with the lock free is not waited on again (503 below).
            var after = Get(record.Id, record.Namespace);
            if (SandboxLifecycle.StateOf(after) != SandboxState.Snapshotting)
            {
                return await EnsureRunningAsync(after, cancellationToken).ConfigureAwait(false);
            }
        }

        throw new EngineException(503, $"sandbox {record.Id} is {record.Status}");
    }

    private async Task WakeAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        using var op = EngineOperation.Start("resume", record, SandboxLifecycle.StateOf(record) == SandboxState.Hibernated ? "hibernate" : "freeze");
        try
        {
            await WakeCoreAsync(record, cancellationToken).ConfigureAwait(false);
            op.Succeed();
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task WakeCoreAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var phases = new BootPhases(options.TimeProvider);
        if (SandboxLifecycle.StateOf(record) == SandboxState.Hibernated)
        {
            using var quiet = BlankDisks.HoldRefill();
            using var quietNetworks = SpareNetworks.HoldRefill();
            var paths = PathsOf(record.Id);
            // After a host reboot the namespace is gone (the sandbox gets a fresh one with the same address, its host end
            // down like the one it left), and the disk and root are unmounted (the disk image and upper layer are kept);
            // both are made at the same time.
            var network = SandboxNetwork.Exists(paths.NetworkNamespace) ? Task.CompletedTask : CreateNetworkAsync(record, cancellationToken, connect: false);
            await AllOfAsync(network, MountRootAsync(record, paths, cancellationToken)).ConfigureAwait(false);
            phases.Mark("root");
            SandboxCgroups.EnsureMemoryDirectory(record.Id);
            await runtime.RestoreAsync(record.Id, paths.Bundle, paths.Hibernation, paths.CriuWork, paths.RuncLog, cancellationToken).ConfigureAwait(false);
            phases.Mark("criu restore");
            CrashPoints.Reach(CrashPoints.WakeRestored);
            // Restored, it runs: nothing from here is cut short by a caller that went away, or it would run unreachable.
            await SandboxNetwork.ConnectAsync(SlotOf(record), CancellationToken.None).ConfigureAwait(false);
            phases.Mark("connect");
            DeleteQuietly(paths.Hibernation);
            if (await runtime.IsPausedAsync(record.Id, CancellationToken.None).ConfigureAwait(false))
            {
                // Dumped while frozen: CRIU brings the freezer state back with it.
                await runtime.ResumeAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            }

            phases.Mark("thaw");
        }
        else
        {
            await runtime.ResumeAsync(record.Id, cancellationToken).ConfigureAwait(false);
        }

        CrashPoints.Reach(CrashPoints.WakeResumed);
        _hibernationRetryAt.TryRemove(record.Id, out _);
        var tier = record.SuspendTier;
        SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
        store.Save(record);
        activity.Touch(record.Id);
        logger.LogInformation("sandbox {Id} resumed from {Tier}; {Phases}", record.Id, tier, phases);
    }

    /// <summary>Frozen sandboxes whose hibernation failed, and when the idle clock may try it again.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _hibernationRetryAt = new(StringComparer.Ordinal);

    /// <summary>
    /// One pass of the idle clock: running sandboxes idle beyond <c>timeout_secs</c> suspend (named, or claimed from a
    /// pool) or terminate (ephemeral); frozen ones idle beyond <see cref="EngineOptions.HibernateAfter"/> hibernate when
    /// CRIU works (one whose hibernation failed is tried again after another <see cref="EngineOptions.HibernateAfter"/>).
    /// Warm pool sandboxes have no idle clock until they are claimed.
    /// </summary>
    public async Task IdleTickAsync(CancellationToken cancellationToken)
    {
        // A forwarder process cannot hold the clock itself: what it has open counts as activity now.
        var connected = await _hostPorts.BusySlotsAsync(cancellationToken).ConfigureAwait(false);
        foreach (var record in store.LiveSandboxes().Where(r => !r.Warm))
        {
            if (connected.Contains(record.Slot))
            {
                activity.Touch(record.Id);
            }
        }

        foreach (var record in store.LiveSandboxes().Where(r => !r.Warm))
        {
            try
            {
                var state = SandboxLifecycle.StateOf(record);
                if (state == SandboxState.Running && record.TimeoutSecs > 0 && activity.IdleFor(record.Id) > TimeSpan.FromSeconds(record.TimeoutSecs))
                {
                    if (record.IsSuspendable)
                    {
                        await SuspendAsync(record.Id, record.Namespace, hibernate: false, cancellationToken).ConfigureAwait(false);
                    }
                    else
                    {
                        await DeleteAsync(record.Id, record.Namespace, "Timeout", cancellationToken).ConfigureAwait(false);
                    }
                }
                else if (state == SandboxState.Frozen && record.SuspendedAt is { } since && CriuAvailable
                    && options.TimeProvider.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds(since) > options.HibernateAfter
                    && !(_hibernationRetryAt.TryGetValue(record.Id, out var retryAt) && options.TimeProvider.GetUtcNow() < retryAt))
                {
                    try
                    {
                        await SuspendAsync(record.Id, record.Namespace, hibernate: true, cancellationToken).ConfigureAwait(false);
                        _hibernationRetryAt.TryRemove(record.Id, out _);
                    }
                    catch (EngineException)
                    {
                        // It stays frozen. A failed dump (a full volume) costs a full write each time: not again on
                        // the next pass, but after another HibernateAfter.
                        _hibernationRetryAt[record.Id] = options.TimeProvider.GetUtcNow() + options.HibernateAfter;
                        throw;
                    }
                }
            }
            catch (EngineException ex)
            {
                logger.LogWarning("idle handling of sandbox {Id}: {Error}", record.Id, ex.Message);
            }
        }
    }
}
