using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Runtime;

/// <summary>
/// Gives every CRIU run its kernel-feature cache, <c>/run/criu.kdat</c>. Without it each dump and restore (every
/// hibernation, wake, checkpoint and fork) probes the kernel again, which costs tens of milliseconds and starts
/// <c>iptables -L</c> as a child. CRIU writes the cache only when <c>/run</c> is a tmpfs, so that a reboot (perhaps into
/// another kernel) clears it; where <c>/run</c> is an ordinary directory (containers, minimal hosts), it never writes
/// one, and leaves a <c>criu.kdat.tmp</c> behind that stops it from ever trying again.
/// </summary>
/// <remarks>
/// Where <c>/run</c> is not a tmpfs, the engine makes the cache at every start: <c>criu check</c> in a private mount
/// namespace whose <c>/run</c> is a fresh tmpfs (so CRIU saves it as it would on any host), copied out to
/// <c>/run/criu.kdat</c>. CRIU reads a cache wherever it lies and re-probes what may change while the host runs. Made
/// at every start, the cache cannot outlive a reboot into another kernel by more than the engine's own restart, which
/// is also when a new CRIU would come in. Where <c>/run</c> is a tmpfs, CRIU keeps its own and the engine does nothing.
/// </remarks>
internal static class CriuKernelDataCache
{
    /// <summary>Where CRIU (as root) reads and writes its cache.</summary>
    public const string CacheFile = "/run/criu.kdat";

    /// <summary>Makes the cache when <c>/run</c> is not a tmpfs; a failure is logged, never fatal (it only costs speed).</summary>
    public static async Task EnsureAsync(string criu, string scratchDirectory, ILogger logger, CancellationToken cancellationToken)
    {
        try
        {
            var runType = await CommandRunner.RunCheckedAsync("findmnt", ["-n", "-o", "FSTYPE", "--target", Path.GetDirectoryName(CacheFile)!], cancellationToken: cancellationToken).ConfigureAwait(false);
            if (runType.Stdout.Trim() == "tmpfs")
            {
                return;
            }

            var made = Path.Combine(scratchDirectory, "criu.kdat");
            File.Delete(made);
            // $0 is CRIU and $1 the copy outside the namespace: neither is interpolated into the script.
            const string script = "mount -t tmpfs -o size=1m,mode=0755 hands-criu-kdat /run && \"$0\" check >/dev/null 2>&1; cp /run/criu.kdat \"$1\"";
            await CommandRunner.RunCheckedAsync("unshare", ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, criu, made], cancellationToken: cancellationToken).ConfigureAwait(false);
            var staged = CacheFile + ".hands";
            File.Copy(made, staged, overwrite: true);
            File.SetUnixFileMode(staged, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            File.Move(staged, CacheFile, overwrite: true);
            File.Delete(made);
            logger.LogInformation("CRIU kernel-feature cache made at {Path} (/run is {Type}, not a tmpfs, so CRIU would not keep one)", CacheFile, runType.Stdout.Trim());
        }
        catch (Exception ex) when (ex is EngineCommandException or IOException or UnauthorizedAccessException)
        {
            logger.LogWarning("CRIU kernel-feature cache not made, every CRIU run probes the kernel again: {Problem}", ex.Message);
        }
    }
}
