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
        Assert.True(ForwarderProcesses(root).Count == 0, "a host-port forwarder process was left running: pid " + string.Join(", ", ForwarderProcesses(root)));
    }

    /// <summary>The pids of <c>hands engine forwarder</c> processes serving <paramref name="root"/>.</summary>
    public static IReadOnlyList<int> ForwarderProcesses(string root) =>
        [.. Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit)).Select(d => int.Parse(d!, System.Globalization.CultureInfo.InvariantCulture))
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

    /// <summary>
    /// Best effort, never throws: removes whatever an engine under <paramref name="dataDirectory"/> left (its containers,
    /// mounts, loop devices, veths) and the directory, so a failed test neither leaks onto the host nor hides its own
    /// failure behind "device busy".
    /// </summary>
    public static void Remove(string dataDirectory)
    {
        var root = Path.GetFullPath(dataDirectory);
        foreach (var forwarder in ForwarderProcesses(root))
        {
            Quietly("kill", "-9", forwarder.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        var runcState = Path.Combine(root, "runc");
        foreach (var container in Directory.Exists(runcState) ? Directory.GetDirectories(runcState) : [])
        {
            Quietly("runc", "--root", runcState, "delete", "--force", Path.GetFileName(container));
        }

        foreach (var mount in File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(p => p.StartsWith(root + "/", StringComparison.Ordinal)).Reverse().ToList())
        {
            Quietly("umount", "--lazy", mount);
        }

        foreach (var loop in Directory.GetDirectories("/sys/block", "loop*").Where(d => File.Exists(Path.Combine(d, "loop", "backing_file"))
            && File.ReadAllText(Path.Combine(d, "loop", "backing_file")).Trim().StartsWith(root + "/", StringComparison.Ordinal)))
        {
            Quietly("losetup", "--detach", "/dev/" + Path.GetFileName(loop));
        }

        var prefix = Network.NetworkSlot.PrefixFor(root);
        foreach (var link in Directory.GetFileSystemEntries("/sys/class/net").Select(Path.GetFileName).Where(l => l!.StartsWith(prefix, StringComparison.Ordinal)))
        {
            Quietly("ip", "link", "del", link!);
        }

        try
        {
            Network.HostFirewall.RemoveAsync(prefix, CancellationToken.None).GetAwaiter().GetResult();
        }
        catch (Exception ex) when (ex is IOException or InvalidOperationException or Hosting.EngineCommandException)
        {
            // Best effort: the test's own assertions report what is left.
        }

        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
        catch (IOException)
        {
            // Reported by the test's own assertions; nothing more to do here.
        }
    }

    private static void Quietly(string file, params string[] args)
    {
        try
        {
            using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true });
            process?.WaitForExit(30_000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }
}
