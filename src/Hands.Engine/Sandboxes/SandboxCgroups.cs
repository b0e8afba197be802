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
}
