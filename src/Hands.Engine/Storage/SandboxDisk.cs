using Hands.Engine.Hosting;

namespace Hands.Engine.Storage;

/// <summary>
/// A sandbox's disk: a sparse ext4 image of <c>disk_mb</c> inside the data volume, mounted under the sandbox's
/// directory, holding the overlay's upper and work directories. A sandbox that writes more than its disk gets ENOSPC
/// from its own filesystem and nothing else notices.
/// </summary>
internal static class SandboxDisk
{
    /// <summary>Tensorlake's default root disk (10 GiB).</summary>
    public const int DefaultMb = 10240;

    /// <summary>Tensorlake's largest disk (100 GiB).</summary>
    public const int MaximumMb = 102400;

    /// <summary>Decision: the local engine allows disks below Tensorlake's 10 GiB floor, down to this, for tests and small tasks.</summary>
    public const int MinimumMb = 64;

    /// <summary>
    /// Makes the image if there is none (a blank one from <paramref name="blanks"/> when it has one of this size) and
    /// mounts it at <paramref name="mountPoint"/> unless it is mounted.
    /// </summary>
    public static async Task EnsureMountedAsync(string image, string mountPoint, int sizeMb, BlankDisks? blanks, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(mountPoint);
        if (Native.MountsUnder(mountPoint).Contains(mountPoint))
        {
            return;
        }

        if (!File.Exists(image) && blanks?.TryTake(sizeMb, image) != true)
        {
            var partial = image + ".partial";
            await FormatAsync(partial, sizeMb, lowPriority: false, cancellationToken).ConfigureAwait(false);
            File.Move(partial, image);
        }

        // noinit_itable: the image is sparse, so its inode tables already read as zeros; zeroing them would only take room.
        await CommandRunner.RunCheckedAsync("mount", ["-o", "loop,noinit_itable,nosuid,nodev", image, mountPoint], cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Writes a blank disk of <paramref name="sizeMb"/> at <paramref name="file"/> (replaced if there): a sparse file
    /// with ext4 in it. <paramref name="lowPriority"/> runs mkfs at nice 19 (<see cref="BlankDisks"/>' refill, which must not slow boots).
    /// </summary>
    public static async Task FormatAsync(string file, int sizeMb, bool lowPriority, CancellationToken cancellationToken)
    {
        await using (var stream = File.Create(file))
        {
            stream.SetLength((long)sizeMb << 20);
        }

        // Sparse, lazily initialised, no root reserve: the sandbox gets all of disk_mb and only what it writes takes room.
        string[] mkfs = ["mkfs.ext4", "-q", "-F", "-m", "0", "-e", "remount-ro", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard", file];
        await (lowPriority
            ? CommandRunner.RunCheckedAsync("nice", ["-n", "19", .. mkfs], cancellationToken: cancellationToken)
            : CommandRunner.RunCheckedAsync(mkfs[0], mkfs[1..], cancellationToken: cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether this process may grow a mounted ext4 filesystem: the kernel's online resize needs
    /// <c>CAP_SYS_RESOURCE</c> (capability 24), which an engine run inside a container may lack even as root.
    /// </summary>
    public static bool CanGrowOnline =>
        File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal)) is { } line
        && ulong.TryParse(line["CapEff:".Length..].Trim(), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var caps)
        && (caps & (1UL << 24)) != 0;

    /// <summary>
    /// Grows a mounted disk to <paramref name="sizeMb"/> while the sandbox runs: the sparse image is extended (no room is
    /// taken until written), the loop device told its new size, and ext4 grown online. Never shrinks.
    /// </summary>
    public static async Task GrowAsync(string image, string mountPoint, int sizeMb, CancellationToken cancellationToken)
    {
        var device = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')).Where(f => f.Length > 4 && f[4] == mountPoint)
            .Select(f => f[Array.IndexOf(f, "-") + 2]).LastOrDefault()
            ?? throw new EngineException(409, $"the sandbox's disk is not mounted at {mountPoint}; wake the sandbox and try again");
        await using (var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            var size = (long)sizeMb << 20;
            if (file.Length < size)
            {
                file.SetLength(size);
            }
        }

        await CommandRunner.RunCheckedAsync("losetup", ["-c", device], cancellationToken: cancellationToken).ConfigureAwait(false);
        await CommandRunner.RunCheckedAsync("resize2fs", [device], cancellationToken: cancellationToken).ConfigureAwait(false);
    }
}
