using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Storage;

/// <summary>
/// The data volume: one ext4 filesystem in <c>{data}/volume.img</c>, mounted at <c>{data}/volume</c>, that holds every
/// sandbox's disk, root and hibernation image, every snapshot layer and every CRIU checkpoint.
/// <para>
/// Decision: the image is allocated in full when it is made (<c>fallocate</c>, not sparse), so everything sandboxes and
/// snapshots can ever use is taken from the host's disk up front. Filling the volume fills nothing else: the engine's
/// database, its key and the host stay writable (the reserve is "everything outside the volume"). The kernel here has
/// neither ext4 nor XFS quota support, so per-sandbox limits are disk images inside the volume
/// (<see cref="SandboxDisk"/>), not project quotas.
/// </para>
/// </summary>
internal sealed class DataVolume(string dataDirectory, int? requestedSizeMb, ILogger logger)
{
    /// <summary>The smallest volume the engine makes: room for a few sandboxes' roots and one memory checkpoint.</summary>
    public const int MinimumSizeMb = 256;

    /// <summary>The default size's ceiling (half the disk's free space, at most this).</summary>
    public const int DefaultCeilingMb = 16 * 1024;

    /// <summary>Below this much free space a create or snapshot is answered 507 before anything is written.</summary>
    public long LowWaterBytes => Math.Min(256L << 20, SizeBytes / 20);

    public string ImageFile { get; } = Path.Combine(dataDirectory, "volume.img");

    public string MountPoint { get; } = MountPointOf(dataDirectory);

    public static string MountPointOf(string dataDirectory) => Path.Combine(dataDirectory, "volume");

    public long SizeBytes => new FileInfo(ImageFile).Length;

    /// <summary>What the volume can still take (root's reserve in it excluded).</summary>
    public long FreeBytes => new DriveInfo(MountPoint).AvailableFreeSpace;

    public bool IsMounted => Native.MountsUnder(MountPoint).Contains(MountPoint);

    /// <summary>Makes the volume on first start, grows it when a larger size is asked for, and mounts it; true when this call mounted it.</summary>
    public async Task<bool> EnsureMountedAsync(CancellationToken cancellationToken)
    {
        RefuseOldLayout();
        Directory.CreateDirectory(MountPoint);
        if (!File.Exists(ImageFile))
        {
            await CreateAsync(cancellationToken).ConfigureAwait(false);
        }

        var mountedNow = !IsMounted;
        if (mountedNow)
        {
            await CommandRunner.RunCheckedAsync("mount", ["-o", "loop,nosuid,nodev", ImageFile, MountPoint], cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        if (requestedSizeMb is { } size && (long)size << 20 > SizeBytes || File.Exists(GrowingMarker))
        {
            await GrowAsync(Math.Max(requestedSizeMb ?? 0, (int)(SizeBytes >> 20)), cancellationToken).ConfigureAwait(false);
        }

        // Layers and checkpoints are read by the engine (and overlay, with the engine's credentials) only: root alone.
        // Sandbox roots must be reachable by runc inside a user namespace; the volume's own mode gates them.
        foreach (var dir in new[] { "layers", "checkpoints" })
        {
            OwnerOnlyDirectory.Ensure(Path.Combine(MountPoint, dir));
        }

        Directory.CreateDirectory(Path.Combine(MountPoint, "sandboxes"));

        return mountedNow;
    }

    /// <summary>Unmounts the volume (when no sandbox is alive; the next start mounts it again).</summary>
    public void Unmount()
    {
        if (IsMounted)
        {
            Native.TryUnmount(MountPoint);
        }
    }

    /// <summary>507 when the volume is below its low-water mark; <paramref name="what"/> says what could not be done.</summary>
    public void EnsureRoomFor(string what)
    {
        var free = FreeBytes;
        if (free < LowWaterBytes)
        {
            throw new EngineException(507, $"{what}: the engine's data volume ({ImageFile}, {SizeBytes >> 20} MiB) has {free >> 20} MiB free. " +
                "Delete sandboxes or snapshots, or restart the engine with a larger --volume-mb");
        }
    }

    private async Task CreateAsync(CancellationToken cancellationToken)
    {
        var sizeMb = requestedSizeMb ?? DefaultSizeMb(dataDirectory);
        if (sizeMb < MinimumSizeMb)
        {
            throw new InvalidOperationException($"the data volume must be at least {MinimumSizeMb} MiB, not {sizeMb}");
        }

        logger.LogInformation("making the data volume {Image}: {Size} MiB, allocated now so that sandboxes can never fill the rest of the disk", ImageFile, sizeMb);
        var partial = ImageFile + ".partial";
        File.Delete(partial);
        try
        {
            await CommandRunner.RunCheckedAsync("fallocate", ["-l", $"{sizeMb}MiB", partial], cancellationToken: cancellationToken).ConfigureAwait(false);
            // Every sandbox's files are in it: root only.
            File.SetUnixFileMode(partial, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            // nodiscard: mkfs would otherwise discard the whole device, which punches the allocation back out of the image.
            // 1 % reserved for root: the engine's own CRIU dumps and layer copies still fit when sandboxes have filled the rest.
            await CommandRunner.RunCheckedAsync("mkfs.ext4", ["-q", "-F", "-m", "1", "-E", "nodiscard", "-L", "hands-volume", partial], cancellationToken: cancellationToken).ConfigureAwait(false);
            File.Move(partial, ImageFile);
        }
        catch
        {
            File.Delete(partial);
            throw;
        }
    }

    /// <summary>Present from before the image grows until its filesystem has: a crash in between is finished on the next start.</summary>
    private string GrowingMarker => ImageFile + ".growing";

    private async Task GrowAsync(int sizeMb, CancellationToken cancellationToken)
    {
        logger.LogInformation("growing the data volume {Image} from {From} MiB to {To} MiB", ImageFile, SizeBytes >> 20, sizeMb);
        await File.WriteAllTextAsync(GrowingMarker, sizeMb.ToString(System.Globalization.CultureInfo.InvariantCulture), cancellationToken).ConfigureAwait(false);
        await CommandRunner.RunCheckedAsync("fallocate", ["-l", $"{sizeMb}MiB", ImageFile], cancellationToken: cancellationToken).ConfigureAwait(false);
        var device = (await CommandRunner.RunCheckedAsync("findmnt", ["-n", "-o", "SOURCE", "--mountpoint", MountPoint], cancellationToken: cancellationToken).ConfigureAwait(false)).Stdout.Trim();
        await CommandRunner.RunCheckedAsync("losetup", ["-c", device], cancellationToken: cancellationToken).ConfigureAwait(false);
        await CommandRunner.RunCheckedAsync("resize2fs", [device], cancellationToken: cancellationToken).ConfigureAwait(false);
        File.Delete(GrowingMarker);
    }

    /// <summary>Half the free space of the disk the data directory is on, at most <see cref="DefaultCeilingMb"/>.</summary>
    public static int DefaultSizeMb(string dataDirectory)
    {
        var freeMb = new DriveInfo(dataDirectory).AvailableFreeSpace >> 20;
        if (freeMb / 2 < MinimumSizeMb)
        {
            throw new InvalidOperationException($"the disk under {dataDirectory} has {freeMb} MiB free; the data volume takes half the free space and needs at least {MinimumSizeMb} MiB. Free space, or pass --volume-mb");
        }

        return (int)Math.Min(freeMb / 2, DefaultCeilingMb);
    }

    /// <summary>Data directories from before the volume kept sandboxes and layers beside the database; those are not moved silently.</summary>
    private void RefuseOldLayout()
    {
        if (File.Exists(ImageFile))
        {
            return;
        }

        var old = new[] { "sandboxes", "layers", "checkpoints" }.Select(d => Path.Combine(dataDirectory, d))
            .Where(d => Directory.Exists(d) && Directory.EnumerateFileSystemEntries(d).Any()).ToList();
        if (old.Count > 0)
        {
            throw new InvalidOperationException(
                $"{dataDirectory} was made by an engine without a data volume and still holds {string.Join(", ", old)}. " +
                "Delete its sandboxes and snapshots with that engine's version first, or start this one with another --data directory");
        }
    }
}
