using System.Globalization;

namespace Hands.Worker.Hosting;

/// <summary>
/// Who the OOM killer takes in a sandbox that runs out of memory: the commands the worker runs for the agent, not the
/// worker. The sandbox daemon starts every process (the worker too) at <c>oom_score_adj</c> 1000, the killer's first
/// choice; the worker puts its own back to 0 (lowering to the floor, 0, needs no privilege) and raises the helper
/// processes it starts — bash, custom tools, rg — to 1000 again. bash is raised before it is given its first command,
/// so everything it runs inherits the raise; a custom tool or rg is raised just after it starts.
/// </summary>
public static class OomScore
{
    /// <summary>The score of the processes the tools start.</summary>
    public const int PreferredVictim = 1000;

    /// <summary>
    /// Lowers this process's score to 0 when it is above (inherited from the daemon). Called before the worker makes
    /// itself non-dumpable, after which its own <c>/proc</c> entries are root's and a non-root worker could not.
    /// </summary>
    public static void LeaveVictimsToTools(WorkerLog log)
    {
        if (Read("self") is > 0 && !Write("self", 0))
        {
            log.Warn("could not lower the worker's oom_score_adj to 0; the OOM killer may take it before a tool's command");
        }
    }

    /// <summary>Raises <paramref name="pid"/>'s score (a helper process of this worker's user: its /proc entry is writable).</summary>
    public static void PreferAsVictim(int pid) => Write(pid.ToString(CultureInfo.InvariantCulture), PreferredVictim);

    /// <summary>The score of <paramref name="pid"/> (a pid or <c>self</c>), or null outside Linux.</summary>
    public static int? Read(string pid)
    {
        try
        {
            return int.Parse(File.ReadAllText($"/proc/{pid}/oom_score_adj").Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            return null;
        }
    }

    private static bool Write(string pid, int score)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/oom_score_adj", score.ToString(CultureInfo.InvariantCulture));
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Not Linux, or the process has exited already.
            return false;
        }
    }
}
