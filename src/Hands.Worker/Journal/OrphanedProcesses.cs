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

    /// <summary>Kills the process and its descendants if it is still the one recorded; answers how many were killed.</summary>
    public static int KillTree(int pid, long start)
    {
        if (StartTimeOf(pid) != start)
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

            var grown = Descendants(tree);
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

    private static HashSet<int> Descendants(HashSet<int> roots)
    {
        var parents = new Dictionary<int, int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && Stat(pid) is { } fields)
            {
                parents[pid] = fields.Parent;
            }
        }

        var tree = new HashSet<int>(roots);
        bool added;
        do
        {
            added = false;
            foreach (var (pid, parent) in parents)
            {
                if (tree.Contains(parent) && tree.Add(pid))
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
