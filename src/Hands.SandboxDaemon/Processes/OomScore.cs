using System.Globalization;

namespace Hands.SandboxDaemon.Processes;

/// <summary>
/// Makes the processes the daemon starts the OOM killer's first choice in the sandbox's cgroup, so a command that
/// allocates past the sandbox's limit is what dies, never the daemon (PID 1's only child: its death ends the sandbox).
/// <para>
/// Decision: not <c>-1000</c> for the daemon. Lowering a score below the process's floor needs
/// <c>CAP_SYS_RESOURCE</c>, which sandboxes do not hold; and a value set from the host would be inherited by every
/// command with the right to keep it, making sandbox processes immune to the host's own OOM killer. Raising is free,
/// so children are raised instead: the daemon lifts its own score to 1000 for the instant of the fork (the child
/// inherits it before it runs anything, unlike a write to the child after the start), then puts its own back. With
/// 1000 a process's badness exceeds the cgroup's whole limit, so any command outranks the daemon at any size; and the
/// host's OOM killer also takes sandbox commands before anything of the host's.
/// </para>
/// </summary>
internal static class OomScore
{
    /// <summary>The score processes started through the API get.</summary>
    public const int PreferredVictim = 1000;

    private const string Self = "/proc/self/oom_score_adj";
    private static readonly Lock Gate = new();

    /// <summary>Runs <paramref name="start"/> (a fork) with this process's score raised, so what it starts inherits the raise.</summary>
    public static void StartRaised(Action start)
    {
        lock (Gate)
        {
            var own = Read();
            var raised = own is not null && Write(PreferredVictim);
            try
            {
                start();
            }
            finally
            {
                if (raised)
                {
                    Write(own!.Value);
                }
            }
        }
    }

    private static int? Read()
    {
        try
        {
            return int.Parse(File.ReadAllText(Self).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static bool Write(int score)
    {
        try
        {
            File.WriteAllText(Self, score.ToString(CultureInfo.InvariantCulture));
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or a kernel that refuses: processes then compete with the daemon by size alone.
            return false;
        }
    }
}
