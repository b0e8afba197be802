namespace Hands.Engine.Sandboxes;

/// <summary>Where runc puts a sandbox's cgroups (<c>cgroupsPath /hands/{id}</c>): the v2 unified tree and each v1 controller's.</summary>
internal static class SandboxCgroups
{
    private const string Root = "/sys/fs/cgroup";

    /// <summary>Every directory the sandbox's cgroup may be, existing or not.</summary>
    public static IEnumerable<string> Directories(string sandboxId)
    {
        yield return Path.Combine(Root, "hands", sandboxId);
        if (!Directory.Exists(Root))
        {
            yield break;
        }

        foreach (var controller in Directory.EnumerateDirectories(Root))
        {
            yield return Path.Combine(controller, "hands", sandboxId);
        }
    }

    /// <summary>
    /// The directory of the sandbox's memory controller: v1's (also on a hybrid host, where memory is a v1
    /// controller) or the v2 unified one; null on a host with neither. It is the source of a bind into the sandbox,
    /// so it must exist before runc starts or restores the container (<see cref="EnsureMemoryDirectory"/>).
    /// </summary>
    public static string? MemoryDirectory(string sandboxId) =>
        File.Exists(Path.Combine(Root, "memory", "memory.oom_control")) ? Path.Combine(Root, "memory", "hands", sandboxId)
        : File.Exists(Path.Combine(Root, "cgroup.controllers")) ? Path.Combine(Root, "hands", sandboxId)
        : null;

    /// <summary>
    /// Makes the sandbox's memory cgroup if it is not there: <c>runc restore</c> checks its bind sources before it
    /// makes the container's cgroups (<c>runc run</c> makes them first), and runc adopts one that exists. Removed with
    /// the container's other cgroups.
    /// </summary>
    public static void EnsureMemoryDirectory(string sandboxId)
    {
        if (MemoryDirectory(sandboxId) is { } directory)
        {
            Directory.CreateDirectory(directory);
        }
    }
}
