using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Hands.Bench;

/// <summary>
/// <c>--cores K</c>: runs the bench on the first K of the cores this process may use, to measure how a result depends
/// on the core count on a machine that has only a few. The bench starts itself again from a thread pinned to those
/// cores, with <c>DOTNET_PROCESSOR_COUNT=K</c>: every thread of the new process descends from that one and so inherits
/// the mask, as does every process it starts (the engine it hosts forks runc, CRIU and ip from its own threads), and
/// the runtime sizes its thread pool, GC and spin-waits for K cores. Kernel threads (softirq, kworkers) are not pinned:
/// <see cref="HostStats.BusyCpu"/> then counts only the pinned cores' time.
/// </summary>
[SupportedOSPlatform("linux")]
internal static partial class CpuPinning
{
    private const string PinnedVariable = "HANDS_BENCH_PINNED_CORES";

    /// <summary>The cores this process may run on, in order (its affinity, from /proc/self/status's Cpus_allowed_list).</summary>
    public static IReadOnlyList<int> Allowed()
    {
        var list = File.ReadLines("/proc/self/status").First(l => l.StartsWith("Cpus_allowed_list:", StringComparison.Ordinal))["Cpus_allowed_list:".Length..].Trim();
        var cpus = new List<int>();
        foreach (var range in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var bounds = range.Split('-');
            var first = int.Parse(bounds[0], CultureInfo.InvariantCulture);
            var last = bounds.Length > 1 ? int.Parse(bounds[1], CultureInfo.InvariantCulture) : first;
            for (var cpu = first; cpu <= last; cpu++)
            {
                cpus.Add(cpu);
            }
        }

        return cpus;
    }

    /// <summary>
    /// When <paramref name="args"/> hold <c>--cores K</c> and this process is not yet the pinned one, runs the bench again
    /// on K cores with the other arguments and returns its exit code; otherwise returns null and the bench goes on here.
    /// </summary>
    public static int? RunPinnedIfAsked(string[] args)
    {
        var index = Array.IndexOf(args, "--cores");
        if (index < 0 || Environment.GetEnvironmentVariable(PinnedVariable) is not null)
        {
            return null;
        }

        var allowed = Allowed();
        if (index + 1 >= args.Length || !int.TryParse(args[index + 1], CultureInfo.InvariantCulture, out var cores) || cores < 1 || cores > allowed.Count)
        {
            Console.Error.WriteLine($"--cores takes a number from 1 to {allowed.Count} (the cores this process may use)");
            return 2;
        }

        var mask = new ulong[(allowed.Max() / 64) + 1];
        foreach (var cpu in allowed.Take(cores))
        {
            mask[cpu / 64] |= 1UL << (cpu % 64);
        }

        // Only this thread: the process started from it below inherits its mask, and this one only waits for it.
        if (SchedSetAffinity(0, (nuint)(mask.Length * sizeof(ulong)), mask) != 0)
        {
            Console.Error.WriteLine($"sched_setaffinity failed: errno {Marshal.GetLastPInvokeError()}");
            return 1;
        }

        var start = new ProcessStartInfo(Environment.ProcessPath!) { UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            start.ArgumentList.Add(Environment.GetCommandLineArgs()[0]);
        }

        foreach (var arg in args.Take(index).Concat(args.Skip(index + 2)))
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment[PinnedVariable] = cores.ToString(CultureInfo.InvariantCulture);
        start.Environment["DOTNET_PROCESSOR_COUNT"] = cores.ToString(CultureInfo.InvariantCulture);
        Console.Error.WriteLine($"running on cores {string.Join(',', allowed.Take(cores))} of {string.Join(',', allowed)}");
        using var pinned = Process.Start(start)!;
        pinned.WaitForExit();
        return pinned.ExitCode;
    }

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int pid, nuint cpusetsize, ulong[] mask);
}
