using System.Globalization;

namespace Hands.Common;

/// <summary>
/// A sandbox's own memory cgroup, which the engine binds read-only into every sandbox at <see cref="MountPoint"/>
/// (cgroup v1's memory controller directory, or the v2 directory). Its OOM-kill counter is how the in-sandbox daemon
/// and the worker know that a process they started was killed for memory rather than by someone's <c>kill -9</c>
/// (both end in SIGKILL), and its limit is what to tell the user. Read-only: a sandbox cannot raise its own limit.
/// </summary>
public static class SandboxMemoryCgroup
{
    /// <summary>Where the engine binds the sandbox's memory cgroup inside the sandbox.</summary>
    public const string MountPoint = "/opt/hands/cgroup/memory";

    /// <summary>
    /// How many processes the kernel's OOM killer has killed in the cgroup at <paramref name="directory"/> (the
    /// <c>oom_kill</c> line of v1's <c>memory.oom_control</c> or v2's <c>memory.events</c>); null where it cannot be
    /// read (outside a sandbox, or under an engine that does not bind it).
    /// </summary>
    public static long? OomKills(string directory = MountPoint)
    {
        foreach (var file in new[] { "memory.oom_control", "memory.events" })
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(directory, file)))
                {
                    if (line.StartsWith("oom_kill ", StringComparison.Ordinal)
                        && long.TryParse(line.AsSpan("oom_kill ".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var kills))
                    {
                        return kills;
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Not this cgroup version, or not bound here.
            }
        }

        return null;
    }

    /// <summary>The cgroup's memory limit in bytes (v1 <c>memory.limit_in_bytes</c>, v2 <c>memory.max</c>); null when unlimited or unreadable.</summary>
    public static long? LimitBytes(string directory = MountPoint)
    {
        foreach (var file in new[] { "memory.limit_in_bytes", "memory.max" })
        {
            try
            {
                var text = File.ReadAllText(Path.Combine(directory, file)).Trim();
                // v1 says "unlimited" with a number near 2^63.
                return long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var limit) && limit < long.MaxValue / 2 ? limit : null;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Not this cgroup version, or not bound here.
            }
        }

        return null;
    }

    /// <summary>
    /// Whether the OOM killer killed something between two readings of <see cref="OomKills"/>. A counter lower than
    /// before means the sandbox was restored into a new cgroup (a hibernation's wake, a memory fork), whose counter
    /// starts at 0: any kill it counts happened since.
    /// </summary>
    public static bool KilledBetween(long? before, long? after) =>
        before is { } b && after is { } a && (a > b || (a < b && a > 0));
}
