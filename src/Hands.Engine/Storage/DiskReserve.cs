using System.Collections.Concurrent;
using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Storage;

/// <summary>
/// Blank sandbox disks made ahead of time, in <c>{volume}/disk-reserve</c>: a create or a fork whose disk has the
/// default size takes one by an atomic rename into its own directory instead of running <c>mkfs.ext4</c> on its boot
/// path (a process and about 14 ms of CPU each, on the path of every create and of every child of a fork).
/// <para>
/// A reserved disk is only ever the output of one <c>mkfs.ext4</c>, the same command a create runs: no sandbox has
/// seen it, and a disk a sandbox had is deleted with the sandbox, never put back. The refill runs at the lowest CPU
/// priority (<c>nice -n 19</c>) and starts no mkfs while a boot holds it (<see cref="HoldRefill"/>): measured, a
/// mkfs beside a boot still slowed the boot's runc and daemon start, through the page cache and the volume's journal
/// more than the CPU. It refills only while the volume has
/// <see cref="Headroom"/> above its low-water mark (each blank disk takes about 4 MB of it; a full volume just leaves
/// the reserve short, quietly). A disk is made under a <c>.partial</c> name and renamed when whole; a start removes the
/// partial ones a killed engine left.
/// </para>
/// </summary>
internal sealed class DiskReserve(DataVolume volume, int target, ILogger logger)
{
    /// <summary>Room the volume keeps above its low-water mark that refills do not take.</summary>
    public const long Headroom = 64L << 20;

    private const string PartialSuffix = ".partial";

    private readonly ConcurrentQueue<string> _ready = new();
    private readonly SemaphoreSlim _wanted = new(0, int.MaxValue);
    private int _warnedFull;
    private int _holds;

    /// <summary>Where the blank disks are.</summary>
    public string Directory { get; } = Path.Combine(volume.MountPoint, "disk-reserve");

    /// <summary>How many blank disks the refill keeps (0: none; every create formats its own).</summary>
    public int Target => target;

    /// <summary>How many are ready now.</summary>
    public int Count => _ready.Count;

    /// <summary>Removes what a killed refill left half made and lists the whole ones (the engine's start, before any create).</summary>
    public void Recover()
    {
        OwnerOnlyDirectory.Ensure(Directory);
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory))
        {
            if (file.EndsWith(PartialSuffix, StringComparison.Ordinal) || target == 0)
            {
                File.Delete(file);
            }
            else
            {
                _ready.Enqueue(file);
            }
        }
    }

    /// <summary>
    /// Moves a blank disk of <paramref name="sizeMb"/> to <paramref name="image"/> (which must not exist) and asks for a
    /// refill; false when none is ready or the size is not the one kept, and the caller formats its own.
    /// </summary>
    public bool TryTake(int sizeMb, string image)
    {
        if (sizeMb != SandboxDisk.DefaultMb || target == 0)
        {
            return false;
        }

        try
        {
            while (_ready.TryDequeue(out var blank))
            {
                try
                {
                    File.Move(blank, image);
                    return true;
                }
                catch (FileNotFoundException)
                {
                    // Removed under the engine (by hand): the next one.
                }
            }

            return false;
        }
        finally
        {
            _wanted.Release();
        }
    }

    /// <summary>Keeps the refill from starting a mkfs until the returned handle is disposed (a boot under way).</summary>
    public IDisposable HoldRefill()
    {
        Interlocked.Increment(ref _holds);
        return new Hold(this);
    }

    private sealed class Hold(DiskReserve reserve) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0 && Interlocked.Decrement(ref reserve._holds) == 0)
            {
                reserve._wanted.Release();
            }
        }
    }

    /// <summary>Refills to <see cref="Target"/> at start and after every take, until <paramref name="cancellationToken"/>.</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        if (target == 0)
        {
            return;
        }

        try
        {
            while (true)
            {
                while (Volatile.Read(ref _holds) == 0 && _ready.Count < target && HasRoom())
                {
                    await MakeOneAsync(cancellationToken).ConfigureAwait(false);
                }

                await _wanted.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Stopping: a partial disk is removed (here, or by the next start's Recover).
        }
    }

    private bool HasRoom()
    {
        if (volume.FreeBytes >= volume.LowWaterBytes + Headroom)
        {
            Interlocked.Exchange(ref _warnedFull, 0);
            return true;
        }

        if (Interlocked.Exchange(ref _warnedFull, 1) == 0)
        {
            logger.LogInformation("disk reserve: {Count} of {Target} blank disks ready; the data volume is too full to make more, so creates format their own", _ready.Count, target);
        }

        return false;
    }

    private async Task MakeOneAsync(CancellationToken cancellationToken)
    {
        var name = Path.Combine(Directory, Guid.NewGuid().ToString("n"));
        var partial = name + PartialSuffix;
        try
        {
            await SandboxDisk.FormatAsync(partial, SandboxDisk.DefaultMb, lowPriority: true, cancellationToken).ConfigureAwait(false);
            File.Move(partial, name);
            _ready.Enqueue(name);
        }
        catch (Exception ex) when (ex is EngineCommandException or IOException)
        {
            File.Delete(partial);
            // The usual cause is a volume that filled meanwhile; HasRoom says so once, and the next take tries again.
            logger.LogInformation("disk reserve: a blank disk could not be made: {Error}", ex.Message);
            await _wanted.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            File.Delete(partial);
            throw;
        }
    }
}
