using System.Globalization;
using System.Runtime.InteropServices;

namespace Hands.Worker.Journal;

/// <summary>
/// Stops what a killed worker left running: a process recorded in the journal (identified by pid and start time, so a
/// reused pid is left alone) and every descendant it still has. The tree is frozen with SIGSTOP until no new child
/// appears, then killed, so nothing forks away in between. A process that detached itself (double fork to init) is
/// beyond reach; docs/worker.md says so.
/// </summary>
internal static partial class OrphanedProcesses
{
    private const int SigKill = 9;
    private const int SigStop = 19;

    /// <summary>The process's start time (field 22 of <c>/proc/PID/stat</c>), or null when it is gone.</summary>
    public static long? StartTimeOf(int pid) => Stat(pid) is { } fields ? fields.Start : null;

    /// <summary>
    /// Now, in the unit of <c>/proc/PID/stat</c>'s start time: clock ticks since boot (USER_HZ, 100 on Linux).
    /// </summary>
    public static long NowTicks()
    {
        var uptime = File.ReadAllText("/proc/uptime").Split(' ')[0];
        return (long)(double.Parse(uptime, CultureInfo.InvariantCulture) * 100);
    }

    /// <summary>
    /// Kills the process, if it is still the one recorded, and those of its descendants that a call begun at
    /// <paramref name="since"/> started (each of them and every process between it and the root started then or
    /// later): a background job an earlier call left in the same shell is spared. Never this process, an ancestor of
    /// it, or PID 1. Answers how many were killed.
    /// </summary>
    public static int KillTree(int pid, long start, long since)
    {
        var spared = Lineage(Environment.ProcessId);
        if (spared.Contains(pid) || StartTimeOf(pid) != start)
        {
            return 0;
        }

        var tree = new HashSet<int> { pid };
        for (var round = 0; round < 20; round++)
        {
            foreach (var member in tree)
            {
                _ = Kill(member, SigStop);
            }

            var grown = Descendants(tree, since, spared);
            if (grown.Count == tree.Count)
            {
                break;
            }

            tree = grown;
        }

        foreach (var member in tree)
        {
            _ = Kill(member, SigKill);
        }

        return tree.Count;
    }

    /// <summary>This process, its ancestors and PID 1.</summary>
    private static HashSet<int> Lineage(int pid)
    {
        var lineage = new HashSet<int> { 1 };
        for (var current = pid; current > 1 && lineage.Add(current) && Stat(current) is { } fields; current = fields.Parent)
        {
        }

        return lineage;
    }

    private static HashSet<int> Descendants(HashSet<int> roots, long since, HashSet<int> spared)
    {
        var processes = new Dictionary<int, (int Parent, long Start)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Stat(pid) is { } fields)
            {
                processes[pid] = fields;
            }
        }

        var tree = new HashSet<int>(roots);
        bool added;
        do
        {
            added = false;
            foreach (var (pid, (parent, start)) in processes)
            {
                if (tree.Contains(parent) && start >= since && !spared.Contains(pid) && tree.Add(pid))
                {
                    added = true;
                }
            }
        }
        while (added);

        return tree;
    }

    /// <summary>Parent pid and start time from <c>/proc/PID/stat</c> (after the command name, which may hold spaces).</summary>
    private static (int Parent, long Start)? Stat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }

        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): the parent is field 4, the start time field 22.
        return fields.Length > 19
            && int.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
            && long.TryParse(fields[19], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
            ? (parent, start)
            : null;
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
