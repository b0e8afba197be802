using System.Globalization;

namespace Hands.Bench;

/// <summary>What the host's /proc and cgroup files say, for the benches that measure the whole machine (load, density).</summary>
internal static class HostStats
{
    public static long MemAvailableBytes() => MemInfo("MemAvailable:");

    public static long MemTotalBytes() => MemInfo("MemTotal:");

    private static long MemInfo(string field) =>
        long.Parse(File.ReadLines("/proc/meminfo").First(l => l.StartsWith(field, StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            CultureInfo.InvariantCulture) * 1024;

    /// <summary>
    /// CPU time the cores this process may run on have spent busy since boot (each one's user, nice, system, irq, softirq
    /// and steal time from its <c>cpuN</c> line of /proc/stat; idle and iowait left out), so the difference over an
    /// operation is what it cost them, in the engine, its child processes and the kernel alike. Every core of the host
    /// unless the bench runs with <c>--cores</c> (<see cref="CpuPinning"/>).
    /// </summary>
    public static TimeSpan BusyCpu()
    {
        var allowed = OperatingSystem.IsLinux() ? CpuPinning.Allowed().Select(cpu => "cpu" + cpu.ToString(CultureInfo.InvariantCulture)).ToHashSet() : [];
        long busy = 0;
        foreach (var line in File.ReadLines("/proc/stat").TakeWhile(l => l.StartsWith("cpu", StringComparison.Ordinal)))
        {
            // cpuN user nice system idle iowait irq softirq steal: ticks of USER_HZ, which Linux fixes at 100 for /proc.
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (allowed.Contains(fields[0]))
            {
                foreach (var index in new[] { 1, 2, 3, 6, 7, 8 })
                {
                    busy += long.Parse(fields[index], CultureInfo.InvariantCulture);
                }
            }
        }

        return TimeSpan.FromMilliseconds(busy * 10);
    }

    public static double LoadAverage() => double.Parse(File.ReadAllText("/proc/loadavg").Split(' ')[0], CultureInfo.InvariantCulture);

    /// <summary>
    /// The memory a sandbox's cgroup charges (page cache included): <c>memory.current</c> under cgroup v2
    /// (/sys/fs/cgroup/hands/ID), <c>memory.usage_in_bytes</c> under v1 (/sys/fs/cgroup/memory/hands/ID); 0 when it has none.
    /// </summary>
    public static long CgroupMemoryBytes(string sandboxId)
    {
        try
        {
            foreach (var file in new[] { Path.Combine("/sys/fs/cgroup/hands", sandboxId, "memory.current"), Path.Combine("/sys/fs/cgroup/memory/hands", sandboxId, "memory.usage_in_bytes") })
            {
                if (File.Exists(file))
                {
                    return long.Parse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture);
                }
            }

            return 0;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Processes on the host whose comm is <paramref name="name"/> (sandboxes' included: one pid namespace tree).</summary>
    public static int ProcessesNamed(string name)
    {
        var count = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            try
            {
                if (char.IsAsciiDigit(Path.GetFileName(dir)[0]) && File.ReadAllText(Path.Combine(dir, "comm")).AsSpan().Trim().SequenceEqual(name))
                {
                    count++;
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }

        return count;
    }
}
