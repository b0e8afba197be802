using System.Diagnostics;
using System.Globalization;

namespace Hands.SandboxDaemon.Processes;

/// <summary>
/// Makes the processes the daemon starts the OOM killer's first choice in the sandbox's cgroup, so a command that
/// allocates past the sandbox's limit is what dies, never the daemon (PID 1's only child: its death ends the sandbox).
/// <para>
/// Decision: not <c>-1000</c> for the daemon. Lowering a score below the process's floor needs
/// <c>CAP_SYS_RESOURCE</c>, which sandboxes do not hold; and a value set from the host would be inherited by every
/// command with the right to keep it, making sandbox processes immune to the host's own OOM killer. Raising is free,
/// so each process raises its own score to 1000 before it becomes the command: it starts as <c>/bin/sh -c</c>, which
/// writes its <c>oom_score_adj</c> and then <c>exec</c>s the command (same pid, nothing of the command has run yet, and
/// all it forks inherits the score). With 1000 a process's badness exceeds the cgroup's whole limit, so any command
/// outranks the daemon, whatever their sizes; the host's OOM killer too takes sandbox commands before the host's own.
/// </para>
/// <para>
/// Not the daemon raising its own score around the fork: a fork in a full cgroup is itself charged and can call the
/// OOM killer while the daemon carries 1000, and then the daemon is the victim (seen: OomTests, dmesg).
/// </para>
/// </summary>
internal static class OomScore
{
    /// <summary>The score processes started through the API get.</summary>
    public const int PreferredVictim = 1000;

    private const string Shell = "/bin/sh";

    // An unwritable file (an unusual kernel) must not stop the command: the error is swallowed, the exec happens.
    private const string Script = "{ echo 1000 > /proc/self/oom_score_adj; } 2>/dev/null; exec \"$@\"";

    /// <summary>
    /// Rewrites <paramref name="info"/> to start through the shell that raises the score, when the sandbox has one
    /// (every image here has; <see cref="RaiseAfterStart"/> covers one without).
    /// </summary>
    public static bool StartRaised(ProcessStartInfo info)
    {
        // A program named like an option would be read as one of exec's.
        if (!File.Exists(Shell) || info.FileName.StartsWith('-'))
        {
            return false;
        }

        List<string> command = [info.FileName, .. info.ArgumentList];
        info.FileName = Shell;
        info.ArgumentList.Clear();
        foreach (var argument in (string[])["-c", Script, "sh", .. command])
        {
            info.ArgumentList.Add(argument);
        }

        return true;
    }

    /// <summary>Raises a started process's score (without a shell: what it forked before this write keeps 0).</summary>
    public static void RaiseAfterStart(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/oom_score_adj", PreferredVictim.ToString(CultureInfo.InvariantCulture));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Ended already, or not Linux.
        }
    }
}
