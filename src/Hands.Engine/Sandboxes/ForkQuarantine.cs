using System.Diagnostics;
using System.Text;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// What a memory fork must not inherit. A process started with <c>HANDS_FORK_POLICY=terminate</c> in its environment
/// (the orchestrator marks hands-worker and the webhook receiver so: they hold the session's credentials and would
/// act as the parent) is killed in every fork restored from a memory snapshot, before the fork's network comes up,
/// so its copy never sends a byte. Every other process resumes in the fork.
/// </summary>
internal static class ForkQuarantine
{
    /// <summary>The marker variable and its value.</summary>
    public const string Variable = "HANDS_FORK_POLICY";

    public const string Terminate = "terminate";

    private static readonly byte[] Marker = Encoding.ASCII.GetBytes($"{Variable}={Terminate}\0");

    /// <summary>Kills the marked processes of a restored sandbox; returns their host pids.</summary>
    public static IReadOnlyList<int> KillMarked(string sandboxId)
    {
        var killed = new List<int>();
        foreach (var pid in ProcessesOf(sandboxId))
        {
            byte[] environ;
            try
            {
                environ = File.ReadAllBytes($"/proc/{pid}/environ");
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                continue; // already gone
            }

            if (IsMarked(environ))
            {
                try
                {
                    using var process = Process.GetProcessById(pid);
                    process.Kill();
                    killed.Add(pid);
                }
                catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
                {
                    // Exited between the read and the kill.
                }
            }
        }

        return killed;
    }

    /// <summary>Waits (at most a second) until the killed processes are gone or zombies: a SIGKILL sent while frozen lands on thaw.</summary>
    public static async Task WaitUntilDeadAsync(IReadOnlyList<int> pids, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 1000 && pids.Any(IsAlive); attempt++)
        {
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..].TrimStart();
            return state.Length > 0 && state[0] is not ('Z' or 'X');
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>True when a NUL-separated environment block holds the marker as a whole entry.</summary>
    public static bool IsMarked(ReadOnlySpan<byte> environ)
    {
        if (environ.StartsWith(Marker.AsSpan()))
        {
            return true;
        }

        Span<byte> withSeparator = stackalloc byte[Marker.Length + 1];
        withSeparator[0] = 0;
        Marker.CopyTo(withSeparator[1..]);
        if (environ.IndexOf(withSeparator) >= 0)
        {
            return true;
        }

        // The last entry may lack its trailing NUL.
        var last = Marker.AsSpan(0, Marker.Length - 1);
        return environ.EndsWith(last) && (environ.Length == last.Length || environ[^(last.Length + 1)] == 0);
    }

    /// <summary>Host pids in the sandbox's cgroups.</summary>
    private static HashSet<int> ProcessesOf(string sandboxId)
    {
        var pids = new HashSet<int>();
        foreach (var file in SandboxCgroups.Directories(sandboxId).Select(d => Path.Combine(d, "cgroup.procs")).Where(File.Exists))
        {
            foreach (var line in File.ReadLines(file))
            {
                if (int.TryParse(line, out var pid))
                {
                    pids.Add(pid);
                }
            }
        }

        return pids;
    }
}
