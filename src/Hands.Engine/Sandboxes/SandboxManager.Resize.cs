using System.Globalization;
using Hands.Engine.Hosting;
using Hands.Engine.Runtime;
using Hands.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

/// <summary>What a live resize asks for; a null field keeps the current value.</summary>
internal sealed record ResizeRequest(double? Cpus, int? MemoryMb, int? DiskMb);

internal sealed partial class SandboxManager
{
    /// <summary>
    /// Tensorlake's live resize (<c>PATCH /sandboxes/{id}</c> with <c>resources</c> alone): whole CPUs and memory change
    /// in the sandbox's cgroup at once (<c>runc update</c>, also while frozen; a hibernated sandbox gets them when it
    /// wakes), the disk only grows (online, ext4). Applied before the answer, so the answer's <c>resource_resize</c> is
    /// <c>succeeded</c> or <c>failed</c>, never left <c>pending</c>; <c>resources</c> always reports what is in force.
    /// A memory limit below what the sandbox uses fails (the kernel cannot reclaim it) and changes nothing.
    /// </summary>
    public async Task<SandboxRecord> ResizeAsync(string idOrName, string ns, ResizeRequest request, CancellationToken cancellationToken)
    {
        if (request is { Cpus: null, MemoryMb: null, DiskMb: null })
        {
            throw new EngineException(400, "resources needs at least one of cpus, memory_mb, disk_mb");
        }

        if (request.Cpus is { } cpus && (cpus < 1 || cpus != Math.Floor(cpus) || cpus > Environment.ProcessorCount * 4))
        {
            throw new EngineException(400, $"resources.cpus must be a whole number from 1 to {Environment.ProcessorCount * 4} on this host, not {cpus.ToString(CultureInfo.InvariantCulture)}");
        }

        if (request.MemoryMb is { } memory && (memory < 64 || memory > HostMemoryMb))
        {
            throw new EngineException(400, $"resources.memory_mb must be from 64 to {HostMemoryMb} (this host's RAM), not {memory}");
        }

        if (request.DiskMb is > SandboxDisk.MaximumMb)
        {
            throw new EngineException(400, $"resources.disk_mb is at most {SandboxDisk.MaximumMb}, not {request.DiskMb}");
        }

        return await LockedAsync(idOrName, ns, async record =>
        {
            var state = SandboxLifecycle.StateOf(record);
            if (state is not (SandboxState.Running or SandboxState.Frozen or SandboxState.Hibernated))
            {
                throw new EngineException(409, $"sandbox {record.Id} is {record.Status}; it can be resized while running or suspended");
            }

            var currentDisk = record.DiskMb ?? SandboxDisk.DefaultMb;
            if (request.DiskMb is { } disk && disk < currentDisk)
            {
                throw new EngineException(400, $"resources.disk_mb can only grow: the disk is {currentDisk} MiB, not shrunk to {disk}");
            }

            if (request.DiskMb is { } larger && larger > currentDisk && !SandboxDisk.CanGrowOnline)
            {
                throw new EngineException(409, "this engine cannot grow a live sandbox's disk: ext4's online resize needs CAP_SYS_RESOURCE, which the engine's " +
                    "process lacks (run it with that capability, or create the sandbox with the disk it needs); nothing was changed");
            }

            if (state == SandboxState.Hibernated && request.MemoryMb is { } lower && lower < record.MemoryMb)
            {
                // Its processes come back with the memory they had; a smaller limit could fail the wake and lose them.
                throw new EngineException(409, $"sandbox {record.Id} is hibernated: its memory can grow now, or shrink once it runs");
            }

            var resize = new ResourceResizeRecord
            {
                Generation = (record.ResourceResize?.Generation ?? 0) + 1,
                RequestedCpus = request.Cpus ?? record.Cpus,
                RequestedMemoryMb = request.MemoryMb ?? record.MemoryMb,
                RequestedDiskMb = request.DiskMb ?? record.DiskMb,
            };

            // Recorded as pending before anything changes, so that an engine killed half-way finds it on restart and
            // finishes it (RecoverAsync), instead of reporting limits other than those the cgroup holds.
            record.ResourceResize = resize;
            store.Save(record);
            await ApplyResizeAsync(record, state, cancellationToken).ConfigureAwait(false);
            return record;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Brings the sandbox to its pending resize's values — cgroup (unless hibernated: it wakes with its bundle's),
    /// bundle, disk — and records the outcome. Every step sets a value rather than adding to one, so running it again
    /// after a crash that cut it short gives the same result.
    /// </summary>
    private async Task ApplyResizeAsync(SandboxRecord record, SandboxState state, CancellationToken cancellationToken)
    {
        var resize = record.ResourceResize!;
        var paths = PathsOf(record.Id);
        var currentDisk = record.DiskMb ?? SandboxDisk.DefaultMb;
        try
        {
            if (resize.RequestedCpus != record.Cpus || resize.RequestedMemoryMb != record.MemoryMb)
            {
                if (state != SandboxState.Hibernated)
                {
                    await runtime.UpdateResourcesAsync(record.Id, BundleWriter.MemoryBytes(resize.RequestedMemoryMb), BundleWriter.CpuQuota(resize.RequestedCpus),
                        BundleWriter.CpuPeriod, cancellationToken).ConfigureAwait(false);
                }

                BundleWriter.UpdateResources(paths.Bundle, resize.RequestedCpus, resize.RequestedMemoryMb);
                record.Cpus = resize.RequestedCpus;
                record.MemoryMb = resize.RequestedMemoryMb;
            }

            CrashPoints.Reach(CrashPoints.ResizeApplied);
            if (resize.RequestedDiskMb is { } grown && grown > currentDisk)
            {
                await SandboxDisk.GrowAsync(paths.DiskImage, paths.Disk, grown, cancellationToken).ConfigureAwait(false);
                record.DiskMb = grown;
            }

            resize.Status = "succeeded";
            logger.LogInformation("sandbox {Id} resized (generation {Generation}): {Cpus} CPUs, {Memory} MiB, disk {Disk} MiB",
                record.Id, resize.Generation, record.Cpus, record.MemoryMb, record.DiskMb ?? SandboxDisk.DefaultMb);
        }
        catch (EngineCommandException ex)
        {
            resize.Status = "failed";
            resize.ErrorMessage = FailedResizeMessage(ex.Message, resize.RequestedMemoryMb);
            logger.LogWarning("sandbox {Id} resize (generation {Generation}) failed: {Error}", record.Id, resize.Generation, resize.ErrorMessage);
        }

        store.Save(record);
    }

    /// <summary>After a restart: a resize the crash cut short (still pending) is finished, or recorded as failed.</summary>
    private async Task FinishInterruptedResizesAsync(CancellationToken cancellationToken)
    {
        foreach (var record in store.LiveSandboxes().Where(r => r.ResourceResize?.Status == "pending"))
        {
            var state = SandboxLifecycle.StateOf(record);
            if (state is SandboxState.Running or SandboxState.Frozen or SandboxState.Hibernated)
            {
                logger.LogInformation("finishing the resize of sandbox {Id} (generation {Generation}) the restart interrupted", record.Id, record.ResourceResize!.Generation);
                await ApplyResizeAsync(record, state, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private static string FailedResizeMessage(string error, int memoryMb) =>
        error.Contains("unable to set memory limit", StringComparison.OrdinalIgnoreCase) || error.Contains("device or resource busy", StringComparison.OrdinalIgnoreCase)
            ? $"the sandbox uses more than {memoryMb} MiB, which the kernel could not reclaim; nothing was changed"
            : $"the resize failed and nothing more was changed: {error.Trim()}";
}
