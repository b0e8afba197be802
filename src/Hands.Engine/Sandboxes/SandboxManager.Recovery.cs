using Hands.Engine.Hosting;
using Hands.Engine.Network;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

internal sealed partial class SandboxManager
{
    /// <summary>
    /// Runs at start: re-attaches to containers that kept running, keeps suspended sandboxes and snapshots, settles
    /// operations a crash interrupted, and removes whatever belongs to no live sandbox (containers, mounts, network
    /// namespaces, veths, cgroups, directories, partial layers).
    /// </summary>
    public async Task RecoverAsync(CancellationToken cancellationToken)
    {
        BlankDisks.Recover();
        var containers = (await runtime.ListAsync(cancellationToken).ConfigureAwait(false)).ToHashSet();
        foreach (var record in store.LiveSandboxes())
        {
            var was = record.Status;
            var state = containers.Contains(record.Id) ? await runtime.StateAsync(record.Id, cancellationToken).ConfigureAwait(false) : null;
            var dumped = Directory.Exists(PathsOf(record.Id).Hibernation);
            var hibernated = record.SuspendTier == SuspendTier.Hibernated && dumped;
            switch (record.Status)
            {
                case SandboxStatus.Running or SandboxStatus.Snapshotting when state is "running" or "paused":
                    if (state == "paused")
                    {
                        await runtime.ResumeAsync(record.Id, cancellationToken).ConfigureAwait(false);
                    }

                    if (record.Status == SandboxStatus.Snapshotting)
                    {
                        // A memory checkpoint takes the veth's host end down while CRIU dumps.
                        await SandboxNetwork.ConnectAsync(SlotOf(record), cancellationToken).ConfigureAwait(false);
                        SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
                        store.Save(record);
                    }

                    activity.Touch(record.Id);
                    logger.LogInformation("re-attached to running sandbox {Id}", record.Id);
                    break;
                case SandboxStatus.Suspended when state is "running" || (state == "paused" && record.SuspendTier == SuspendTier.Hibernated):
                    // A wake the crash cut short: the container was thawed or restored, the record not yet updated.
                    if (state == "paused")
                    {
                        await runtime.ResumeAsync(record.Id, cancellationToken).ConfigureAwait(false);
                    }

                    // A hibernated one's veth was down from its dump until the wake connects it.
                    await SandboxNetwork.ConnectAsync(SlotOf(record), cancellationToken).ConfigureAwait(false);
                    DeleteQuietly(PathsOf(record.Id).Hibernation);
                    SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
                    store.Save(record);
                    activity.Touch(record.Id);
                    logger.LogInformation("finished the wake of sandbox {Id} the restart interrupted", record.Id);
                    break;
                case SandboxStatus.Suspended when record.SuspendTier == SuspendTier.Frozen && state == "paused":
                case SandboxStatus.Suspended when hibernated:
                    logger.LogInformation("kept suspended sandbox {Id} ({Tier})", record.Id, record.SuspendTier);
                    break;
                case SandboxStatus.Suspending when state is "running" or "paused":
                    // A hibernation was cut short; the container is intact, its veth perhaps already down for the dump.
                    await SandboxNetwork.ConnectAsync(SlotOf(record), cancellationToken).ConfigureAwait(false);
                    SandboxLifecycle.MoveTo(record, state == "paused" ? SandboxState.Frozen : SandboxState.Running, Now);
                    store.Save(record);
                    break;
                case SandboxStatus.Suspending when state is null && dumped:
                    // The dump completed and the container was deleted; only the record was not updated. (While it
                    // is suspending, the record's tier is where the dump started, never hibernated.)
                    SandboxLifecycle.MoveTo(record, SandboxState.Hibernated, Now);
                    store.Save(record);
                    break;
                default:
                    logger.LogWarning("sandbox {Id} was {Status} but its container is {State}; terminating it", record.Id, record.Status, state ?? "gone");
                    await TearDownAsync(record, cancellationToken).ConfigureAwait(false);
                    SandboxLifecycle.MoveTo(record, SandboxState.Terminated, Now, "EngineRestarted");
                    record.ErrorDetails = $"the engine restarted while the sandbox was {was} and its container was {state ?? "gone"}";
                    store.Save(record);
                    break;
            }
        }

        await FinishInterruptedResizesAsync(cancellationToken).ConfigureAwait(false);
        await RemoveOrphansAsync(containers, cancellationToken).ConfigureAwait(false);
        // In-process forwards are opened again; a forwarder process that outlived the engine already serves them
        // (connections in flight included), and is told the state the records give: every slot in one message, since
        // a state naming only some would close the others' listeners and cut their connections. The same message
        // closes whatever the forwarder still serves for a sandbox that did not survive the restart.
        await _hostPorts.OpenAllAsync(
            [.. store.LiveSandboxes().Where(r => r.Slot > 0 && SandboxNetwork.Exists(PathsOf(r.Id).NetworkNamespace)).Select(SlotOf)],
            cancellationToken).ConfigureAwait(false);
    }

    private async Task RemoveOrphansAsync(HashSet<string> containers, CancellationToken cancellationToken)
    {
        var alive = store.LiveSandboxes();
        var aliveIds = alive.Select(s => s.Id).ToHashSet();
        foreach (var orphan in containers.Where(c => !aliveIds.Contains(c)))
        {
            logger.LogWarning("removing orphaned container {Id}", orphan);
            await runtime.DeleteAsync(orphan, cancellationToken).ConfigureAwait(false);
        }

        var sandboxesDirectory = Path.Combine(volume.MountPoint, "sandboxes");
        foreach (var mount in Native.MountsUnder(sandboxesDirectory))
        {
            var id = Path.GetRelativePath(sandboxesDirectory, mount).Split('/')[0];
            if (!aliveIds.Contains(id))
            {
                logger.LogWarning("unmounting orphaned {Mount}", mount);
                Native.TryUnmount(mount);
            }
        }

        var netnsDirectory = Path.Combine(options.DataDirectory, "netns");
        if (Directory.Exists(netnsDirectory))
        {
            foreach (var file in Directory.EnumerateFiles(netnsDirectory).Where(f => !aliveIds.Contains(Path.GetFileName(f))))
            {
                logger.LogWarning("removing orphaned network namespace {File}", file);
                Native.TryUnmount(file);
                File.Delete(file);
            }
        }

        var slots = alive.Select(s => SlotOf(s).HostInterface).ToHashSet();
        foreach (var link in Directory.Exists("/sys/class/net") ? Directory.EnumerateFileSystemEntries("/sys/class/net").Select(Path.GetFileName) : [])
        {
            if (link is not null && link.StartsWith(_interfacePrefix, StringComparison.Ordinal) && !slots.Contains(link))
            {
                await CommandRunner.RunAsync("ip", ["link", "del", link], cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }

        if (Directory.Exists(sandboxesDirectory))
        {
            foreach (var dir in Directory.EnumerateDirectories(sandboxesDirectory).Where(d => !aliveIds.Contains(Path.GetFileName(d))))
            {
                RemoveCgroups(Path.GetFileName(dir));
                DeleteQuietly(dir);
            }
        }

        // A layer nothing names: half-copied (*.partial), moved into place by a snapshot the crash kept from being
        // recorded, or left by a snapshot deletion the crash cut short.
        // Compared by name (a snapshot id), not by path: a data directory reached by another path (moved, a symlink)
        // must not make every recorded layer look like nobody's.
        var referenced = store.Snapshots().SelectMany(s => s.Layers).Concat(alive.SelectMany(s => s.Layers))
            .Select(Path.GetFileName).ToHashSet(StringComparer.Ordinal);
        foreach (var layer in Directory.Exists(LayersDirectory) ? Directory.EnumerateDirectories(LayersDirectory) : [])
        {
            if (!referenced.Contains(Path.GetFileName(layer)))
            {
                logger.LogWarning("removing orphaned layer {Layer}", layer);
                DeleteQuietly(layer);
            }
        }

        var snapshotIds = store.Snapshots().Select(s => s.Id).ToHashSet();
        foreach (var checkpoint in Directory.Exists(CheckpointsDirectory) ? Directory.EnumerateDirectories(CheckpointsDirectory) : [])
        {
            if (!snapshotIds.Contains(Path.GetFileName(checkpoint)))
            {
                DeleteQuietly(checkpoint);
            }
        }
    }
}
