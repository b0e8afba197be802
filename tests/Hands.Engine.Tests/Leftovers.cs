namespace Hands.Engine.Tests;

/// <summary>Checks the host for anything an engine under <c>dataDirectory</c> left: mounts, loop devices, containers' state, veths, host firewall chains.</summary>
internal static class Leftovers
{
    public static void AssertNone(string dataDirectory)
    {
        var root = Path.GetFullPath(dataDirectory);
        // Under the data directory, not the directory itself: that may be a test's own tmpfs.
        var mounts = File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(p => p.StartsWith(root + "/", StringComparison.Ordinal)).ToList();
        Assert.True(mounts.Count == 0, "mounts left behind: " + string.Join(", ", mounts));
        // Sandbox disks and the data volume are loop devices; one still attached holds its image (and its space).
        var loops = Directory.GetDirectories("/sys/block", "loop*").Select(d => Path.Combine(d, "loop", "backing_file")).Where(File.Exists)
            .Select(f => File.ReadAllText(f).Trim())
            // A disk image in a volume that was detached reads relative to that volume ("/sandboxes/{id}/disk.img").
            .Where(f => f.StartsWith(root + "/", StringComparison.Ordinal) || (f.StartsWith("/sandboxes/", StringComparison.Ordinal) && f.EndsWith("/disk.img", StringComparison.Ordinal)))
            .ToList();
        Assert.True(loops.Count == 0, "loop devices left behind: " + string.Join(", ", loops));
        var runcState = Path.Combine(root, "runc");
        var containers = Directory.Exists(runcState) ? Directory.GetDirectories(runcState) : [];
        Assert.True(containers.Length == 0, "containers left behind: " + string.Join(", ", containers.Select(Path.GetFileName)));
        var prefix = Network.NetworkSlot.PrefixFor(root);
        var links = Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName).Where(l => l!.StartsWith(prefix, StringComparison.Ordinal)).ToList();
        Assert.True(links.Count == 0, "veths left behind: " + string.Join(", ", links));
        Assert.False(Network.HostFirewall.ExistsAsync(prefix, CancellationToken.None).GetAwaiter().GetResult(), "the engine's host firewall chains were left behind");
    }
}
