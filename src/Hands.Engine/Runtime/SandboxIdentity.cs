using System.Globalization;
using Hands.Engine.Hosting;

namespace Hands.Engine.Runtime;

/// <summary>
/// Who a sandbox's users are on the host. By default sandbox root is host root (no user namespace), which memory
/// snapshots, hibernation and memory forks need. With <see cref="EngineOptions.UserNamespace"/> every sandbox runs in a
/// user namespace and sandbox id <c>n</c> is host id <see cref="HostBase"/> + <c>n</c> (n below <see cref="Size"/>).
/// <para>
/// Decision: one range shared by all sandboxes, as Docker's userns-remap does, not one per sandbox. A per-sandbox range
/// would need a re-owned copy of every image and snapshot layer per sandbox (idmapped mounts need runc 1.2; this host
/// has 1.1.5). What a shared range gives up is small: sandboxes' files sit under the root-only data directory, so a
/// process that got out of its own sandbox as host id <see cref="HostBase"/> still cannot reach another's.
/// </para>
/// <para>
/// Decision: the user namespace is an explicit choice, not the default, because CRIU 4.2 cannot restore a
/// user-namespaced process tree into the engine's network namespace (it recreates the user namespace, then its setns
/// into the external network namespace is refused; <c>join-ns user</c> is ignored when the image holds a user
/// namespace), and memory forks depend on that external namespace. With it, memory snapshots and hibernation are off.
/// </para>
/// </summary>
internal sealed class SandboxIdentity(bool userNamespace)
{
    /// <summary>Host id of sandbox root when the user namespace is on: far above any account a host makes.</summary>
    public const uint HostBase = 1_000_000_000;

    /// <summary>Ids a sandbox has (0-65535: root, tl-user 1000, nobody 65534).</summary>
    public const uint Size = 65536;

    public bool UserNamespace { get; } = userNamespace;

    /// <summary>What the <c>runtime</c> field reports for a sandbox.</summary>
    public string RuntimeName => UserNamespace ? "runc-userns" : "runc";

    /// <summary>The host id of sandbox id <paramref name="sandboxId"/>.</summary>
    public uint HostIdOf(uint sandboxId) => UserNamespace ? HostBase + sandboxId : sandboxId;

    /// <summary>Makes <paramref name="path"/> (not a link's target) belong to sandbox id <paramref name="sandboxId"/>.</summary>
    public void Own(string path, uint sandboxId = 0) => Native.LChown(path, HostIdOf(sandboxId), HostIdOf(sandboxId));

    /// <summary>
    /// Closes a directory that holds sandboxes' files to everyone but host root: mode 0700. With the user namespace runc
    /// mounts a sandbox's root from inside it, so sandbox root must pass through: root-owned, group = sandbox root's host
    /// gid, mode 0710 (enter, never list). Host users stay out either way.
    /// </summary>
    public void CloseDirectory(string path)
    {
        if (UserNamespace)
        {
            Native.LChown(path, 0, HostBase);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute);
        }
        else
        {
            Native.LChown(path, 0, 0);
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>
    /// Moves every owner and group in a root file system built with host ids (debootstrap's) into the sandbox range:
    /// id n becomes <see cref="HostIdOf"/>(n). One <c>chown --from</c> pass per distinct id (a base has a dozen).
    /// </summary>
    public async Task ShiftTreeAsync(string root, CancellationToken cancellationToken)
    {
        if (!UserNamespace)
        {
            return;
        }

        var ids = (await CommandRunner.RunCheckedAsync("find", [root, "-xdev", "-printf", "%U %G\n"], cancellationToken: cancellationToken).ConfigureAwait(false)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(' ')).ToList();
        foreach (var uid in ids.Select(pair => uint.Parse(pair[0], CultureInfo.InvariantCulture)).Distinct().Where(id => id < Size))
        {
            await CommandRunner.RunCheckedAsync("chown", ["-R", "-h", $"--from={uid}", HostIdOf(uid).ToString(CultureInfo.InvariantCulture), root], cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        foreach (var gid in ids.Select(pair => uint.Parse(pair[1], CultureInfo.InvariantCulture)).Distinct().Where(id => id < Size))
        {
            await CommandRunner.RunCheckedAsync("chown", ["-R", "-h", $"--from=:{gid}", ":" + HostIdOf(gid).ToString(CultureInfo.InvariantCulture), root], cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Layers and snapshots carry the owners of the mode they were made in, so a data volume keeps one mode: the first
    /// start records it, a later start with the other mode is refused with what to do.
    /// </summary>
    public void EnsureVolumeMatches(string volumeMountPoint)
    {
        var marker = Path.Combine(volumeMountPoint, "identity");
        var mine = UserNamespace ? $"userns {HostBase} {Size}" : "host-root";
        if (!File.Exists(marker))
        {
            File.WriteAllText(marker, mine + "\n");
            return;
        }

        var recorded = File.ReadAllText(marker).Trim();
        if (recorded != mine)
        {
            throw new InvalidOperationException(
                $"this data directory's sandboxes and snapshots were made {(recorded == "host-root" ? "without" : "with")} --userns and their files are owned accordingly; " +
                $"start the engine {(recorded == "host-root" ? "without" : "with")} --userns, or use another --data directory for the other mode");
        }
    }
}
