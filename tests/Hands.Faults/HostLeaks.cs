using System.Diagnostics;
using System.Runtime.Versioning;
using Hands.Engine.Network;
using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;

namespace Hands.Faults;

/// <summary>
/// What an engine under a data directory can leave on the host: mounts (the data volume, sandbox disks, overlays,
/// network-namespace bind mounts), loop devices, runc containers, network namespaces, veths, the host firewall chains,
/// cgroups and, in the volume, sandbox directories, snapshot layers and checkpoints. <see cref="Find"/> lists what is
/// left after the engine stopped; <see cref="FindOrphans"/> what a running engine holds that none of its records
/// names; <see cref="Remove"/> clears it all, best effort, so a failed run neither leaks onto the host nor hides its
/// failure behind "device busy".
/// </summary>
[SupportedOSPlatform("linux")]
public static class HostLeaks
{
    /// <summary>
    /// Everything left on the host by a stopped engine under <paramref name="dataDirectory"/>, one line per kind; empty
    /// when nothing is. <paramref name="sandboxIds"/> are the sandboxes it ever had (their cgroups are checked too).
    /// </summary>
    public static IReadOnlyList<string> Find(string dataDirectory, IEnumerable<string>? sandboxIds = null)
    {
        var root = Path.GetFullPath(dataDirectory);
        var leaks = new List<string>();
        // Under the data directory, not the directory itself: that may be a test's own tmpfs.
        Add(leaks, "mounts", MountsUnder(root));
        // Sandbox disks and the data volume are loop devices; one still attached holds its image (and its space).
        Add(leaks, "loop devices", LoopBackingFiles()
            // A disk image in a volume that was detached reads relative to that volume ("/sandboxes/{id}/disk.img").
            .Where(f => f.StartsWith(root + "/", StringComparison.Ordinal) || (f.StartsWith("/sandboxes/", StringComparison.Ordinal) && f.EndsWith("/disk.img", StringComparison.Ordinal))));
        Add(leaks, "containers", Entries(Path.Combine(root, "runc")));
        Add(leaks, "network namespaces", Entries(Path.Combine(root, "netns")));
        var prefix = NetworkSlot.PrefixFor(root);
        Add(leaks, "veths", Veths(prefix));
        if (HostFirewall.ExistsAsync(prefix, CancellationToken.None).GetAwaiter().GetResult())
        {
            leaks.Add("the engine's host firewall chains were left behind");
        }

        Add(leaks, "cgroups", (sandboxIds ?? []).SelectMany(SandboxCgroups.Directories).Where(Directory.Exists));
        Add(leaks, "host-port forwarder processes", ForwarderProcesses(root).Select(pid => pid.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        return leaks;
    }

    /// <summary>The pids of <c>hands engine forwarder</c> processes serving <paramref name="dataDirectory"/>.</summary>
    public static IReadOnlyList<int> ForwarderProcesses(string dataDirectory)
    {
        var root = Path.GetFullPath(dataDirectory);
        return [.. Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit))
            .Select(d => int.Parse(d!, System.Globalization.CultureInfo.InvariantCulture))
            .Where(pid =>
            {
                try
                {
                    var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                    return argv.Contains("forwarder") && argv.SkipWhile(a => a != "--data").Skip(1).FirstOrDefault() == root;
                }
                catch (IOException)
                {
                    return false;
                }
            })];
    }

    /// <summary>
    /// What a running engine under <paramref name="dataDirectory"/> holds that its records do not name, given every
    /// sandbox it lists (<paramref name="sandboxes"/>, terminated ones included) and its snapshots: containers, volume
    /// directories, network namespaces and cgroups of sandboxes that are not alive, more veths than live sandboxes,
    /// layers and checkpoints of no snapshot. Empty when recovery left nothing behind.
    /// </summary>
    public static IReadOnlyList<string> FindOrphans(string dataDirectory, IReadOnlyCollection<SandboxInfo> sandboxes, IReadOnlyCollection<SnapshotInfo> snapshots)
    {
        ArgumentNullException.ThrowIfNull(sandboxes);
        ArgumentNullException.ThrowIfNull(snapshots);
        var root = Path.GetFullPath(dataDirectory);
        var live = sandboxes.Where(s => s.Status != SandboxStatus.Terminated).Select(s => s.CanonicalId).ToHashSet(StringComparer.Ordinal);
        var kept = snapshots.Select(s => s.CanonicalId).ToHashSet(StringComparer.Ordinal);
        var volume = DataVolume.MountPointOf(root);
        var orphans = new List<string>();
        Add(orphans, "containers of no live sandbox", Entries(Path.Combine(root, "runc")).Where(id => !live.Contains(id)));
        Add(orphans, "sandbox directories of no live sandbox", Entries(Path.Combine(volume, "sandboxes")).Where(id => !live.Contains(id)));
        // A running engine keeps spare networks for memory forks (SpareNetworks): namespaces and veths of no sandbox.
        var spares = Entries(Path.Combine(root, "netns")).Count(name => name.StartsWith(SpareNetworks.FilePrefix, StringComparison.Ordinal));
        Add(orphans, "network namespaces of no live sandbox", Entries(Path.Combine(root, "netns"))
            .Where(id => !live.Contains(id) && !id.StartsWith(SpareNetworks.FilePrefix, StringComparison.Ordinal)));
        Add(orphans, "layers of no snapshot", Entries(Path.Combine(volume, "layers")).Where(id => !kept.Contains(id)));
        Add(orphans, "checkpoints of no snapshot", Entries(Path.Combine(volume, "checkpoints")).Where(id => !kept.Contains(id)));
        var veths = Veths(NetworkSlot.PrefixFor(root)).ToList();
        if (veths.Count > live.Count + spares)
        {
            orphans.Add($"{veths.Count} veths for {live.Count} live sandboxes and {spares} spare networks: {string.Join(", ", veths)}");
        }

        Add(orphans, "cgroups of terminated sandboxes", sandboxes.Where(s => s.Status == SandboxStatus.Terminated)
            .SelectMany(s => SandboxCgroups.Directories(s.CanonicalId)).Where(Directory.Exists));
        return orphans;
    }

    /// <summary>
    /// Best effort, never throws: removes whatever an engine under <paramref name="dataDirectory"/> left (its containers,
    /// mounts, loop devices, veths, firewall chains, the cgroups of <paramref name="sandboxIds"/>) and the directory.
    /// </summary>
    public static void Remove(string dataDirectory, IEnumerable<string>? sandboxIds = null)
    {
        var root = Path.GetFullPath(dataDirectory);
        foreach (var forwarder in ForwarderProcesses(root))
        {
            Quietly("kill", "-9", forwarder.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var runcState = Path.Combine(root, "runc");
        foreach (var container in Entries(runcState))
        {
            Quietly("runc", "--root", runcState, "delete", "--force", container);
        }

        foreach (var mount in MountsUnder(root).Reverse().ToList())
        {
            Quietly("umount", "--lazy", mount);
        }

        foreach (var loop in Directory.GetDirectories("/sys/block", "loop*").Where(d => File.Exists(Path.Combine(d, "loop", "backing_file"))
            && ReadQuietly(Path.Combine(d, "loop", "backing_file")).StartsWith(root + "/", StringComparison.Ordinal)))
        {
            Quietly("losetup", "--detach", "/dev/" + Path.GetFileName(loop));
        }

        var prefix = NetworkSlot.PrefixFor(root);
        foreach (var link in Veths(prefix))
        {
            Quietly("ip", "link", "del", link);
        }

        try
        {
            HostFirewall.RemoveAsync(prefix, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or Hands.Engine.Hosting.EngineCommandException)
        {
            // Best effort: the caller's own checks report what is left.
        }

        foreach (var cgroup in (sandboxIds ?? []).SelectMany(SandboxCgroups.Directories).Where(Directory.Exists))
        {
            try
            {
                Directory.Delete(cgroup);
            }
            catch (IOException)
            {
                // A cgroup with processes in it cannot go; reported by the caller's checks.
            }
        }

        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Reported by the caller's own checks; nothing more to do here.
        }
    }

    private static void Add(List<string> into, string what, IEnumerable<string> found)
    {
        var list = found.ToList();
        if (list.Count > 0)
        {
            into.Add($"{what} left behind: {string.Join(", ", list)}");
        }
    }

    private static IEnumerable<string> MountsUnder(string root) =>
        File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(p => p.StartsWith(root + "/", StringComparison.Ordinal)).ToList();

    private static IEnumerable<string> LoopBackingFiles() =>
        Directory.GetDirectories("/sys/block", "loop*").Select(d => Path.Combine(d, "loop", "backing_file")).Where(File.Exists).Select(ReadQuietly)
            .Where(f => f.Length > 0).ToList();

    private static IEnumerable<string> Veths(string prefix) =>
        Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName).Where(l => l!.StartsWith(prefix, StringComparison.Ordinal)).Cast<string>().ToList();

    private static IEnumerable<string> Entries(string directory) =>
        Directory.Exists(directory) ? [.. Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Cast<string>().Order(StringComparer.Ordinal)] : [];

    // A loop device detached between the listing and the read has no backing file any more.
    private static string ReadQuietly(string file)
    {
        try
        {
            return File.ReadAllText(file).Trim();
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static void Quietly(string file, params string[] args)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true });
            process?.WaitForExit(30_000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }
}
