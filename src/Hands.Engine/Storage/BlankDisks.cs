using System.Collections.Concurrent;
using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Storage;

/// <summary>
/// Blank sandbox disks formatted ahead, in <c>{volume}/blank-disks</c>: a create or a fork child whose disk has the
/// default size takes one by an atomic rename into its own directory instead of running <c>mkfs.ext4</c> on its boot
/// path (a process and about 10 ms of a boot's root step, on every create and on every child of a fork).
/// <para>
/// A blank is only ever the output of one <c>mkfs.ext4</c>, the same command a create runs (so it has a filesystem UUID
/// of its own): no sandbox has seen it, and a disk a sandbox had is deleted with the sandbox, never put back. The refill
/// runs at the lowest CPU priority (<c>nice -n 19</c>) and starts no mkfs while a boot or a wake holds it
/// (<see cref="HoldRefill"/>): a boot is short, and a mkfs beside it would compete for the page cache and the volume's
/// journal (its fsync), which nice does not order. It refills only while the volume has <see cref="Headroom"/> above
/// its low-water mark (each blank takes about 4 MB of it; a full volume just leaves the stock short, said once at
/// information level). A blank is made under a <c>.partial</c> name and renamed when whole; a start removes the partial
/// ones a killed engine left, and any beyond the target or of another size.
/// </para>
/// </summary>
internal sealed class BlankDisks(DataVolume volume, int target, ILogger logger, TimeProvider time)
{
    /// <summary>Room the volume keeps above its low-water mark that refills do not take.</summary>
    public const long Headroom = 64L << 20;

    private const string PartialSuffix = ".partial";

    private readonly ConcurrentQueue<string> _ready = new();
    private readonly StockRefill _refill = new("blank disks", logger, time);
    private int _saidFull;

    /// <summary>Where the blank disks are.</summary>
    public string Directory { get; } = Path.Combine(volume.MountPoint, "blank-disks");

    /// <summary>How many are ready now.</summary>
    public int Count => _ready.Count;

    /// <summary>
    /// The engine's start, before any create: removes what a killed refill left half made, and blanks beyond the target
    /// or of another size (a default changed by an upgrade); lists the others as ready.
    /// </summary>
    public void Recover()
    {
        OwnerOnlyDirectory.Ensure(Directory);
        foreach (var file in System.IO.Directory.EnumerateFiles(Directory).Order(StringComparer.Ordinal))
        {
            if (file.EndsWith(PartialSuffix, StringComparison.Ordinal) || _ready.Count >= target || new FileInfo(file).Length != (long)SandboxDisk.DefaultMb << 20)
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
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Removed or spoiled under the engine (by hand): dropped, and the next one tried.
                    TryDelete(blank);
                }
            }

            return false;
        }
        finally
        {
            Wake();
        }
    }

    /// <summary>Keeps the refill from starting a mkfs until the returned handle is disposed (a boot under way).</summary>
    public IDisposable HoldRefill() => _refill.Hold();

    /// <summary>Room in the volume may have come back (a sandbox or snapshot deleted): a short stock refills.</summary>
    public void Wake()
    {
        if (target > 0)
        {
            _refill.Wake();
        }
    }

    /// <summary>
    /// Refills to the target at start and when woken, until <paramref name="cancellationToken"/>. A mkfs under
    /// way when it is cancelled is let finish (a few ms), so no child process outlives the engine's stop or keeps the
    /// volume busy while it unmounts. Never throws: a failure is logged and tried again later.
    /// </summary>
    public Task RunAsync(CancellationToken cancellationToken) => target == 0 ? Task.CompletedTask : _refill.RunAsync(async ct =>
    {
        while (!ct.IsCancellationRequested && !_refill.Held && _ready.Count < target && HasRoom())
        {
            if (!await MakeOneAsync().ConfigureAwait(false))
            {
                break;
            }
        }
    }, cancellationToken);

    private bool HasRoom()
    {
        if (volume.FreeBytes >= volume.LowWaterBytes + Headroom)
        {
            Interlocked.Exchange(ref _saidFull, 0);
            return true;
        }

        if (Interlocked.Exchange(ref _saidFull, 1) == 0)
        {
            logger.LogInformation("blank disks: {Count} of {Target} ready; the data volume is too full to make more, so creates format their own", _ready.Count, target);
        }

        return false;
    }

    /// <summary>Makes one blank; false when mkfs failed (said at information level: the usual cause is a volume that filled meanwhile).</summary>
    private async Task<bool> MakeOneAsync()
    {
        var name = Path.Combine(Directory, Guid.NewGuid().ToString("n"));
        var partial = name + PartialSuffix;
        try
        {
            await SandboxDisk.FormatAsync(partial, SandboxDisk.DefaultMb, lowPriority: true, CancellationToken.None).ConfigureAwait(false);
            File.Move(partial, name);
            _ready.Enqueue(name);
            return true;
        }
        catch (Exception ex) when (ex is EngineCommandException or IOException or UnauthorizedAccessException)
        {
            TryDelete(partial);
            logger.LogInformation("blank disks: one could not be made, so creates format their own until the next take: {Error}", ex.Message);
            return false;
        }
    }

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left for the next start's Recover.
        }
    }
}
