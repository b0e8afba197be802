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
/// has 1.1.5). What a shared range gives up: a process that got out of its own sandbox's namespaces runs as host id
/// <see cref="HostBase"/>, passes the data directory's group like every sandbox's root, and so can reach the other
/// sandboxes' roots; layers, checkpoints, images, the database and the keys stay root-only, and it holds no host
/// privilege (docs/engine.md, "User namespaces").
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
        // chown clears setuid and setgid bits (su, passwd): note them to set them again. File capabilities are lost.
        var special = (await CommandRunner.RunCheckedAsync("find", [root, "-xdev", "-type", "f", "-perm", "/6000", "-printf", "%m %p\n"], cancellationToken: cancellationToken).ConfigureAwait(false)).Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line.Split(' ', 2)).ToList();
        foreach (var uid in ids.Select(pair => uint.Parse(pair[0], CultureInfo.InvariantCulture)).Distinct().Where(id => id < Size))
        {
            await CommandRunner.RunCheckedAsync("chown", ["-R", "-h", $"--from={uid}", HostIdOf(uid).ToString(CultureInfo.InvariantCulture), root], cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        foreach (var gid in ids.Select(pair => uint.Parse(pair[1], CultureInfo.InvariantCulture)).Distinct().Where(id => id < Size))
        {
            await CommandRunner.RunCheckedAsync("chown", ["-R", "-h", $"--from=:{gid}", ":" + HostIdOf(gid).ToString(CultureInfo.InvariantCulture), root], cancellationToken: cancellationToken).ConfigureAwait(false);
        }

        foreach (var entry in special)
        {
            await CommandRunner.RunCheckedAsync("chmod", [entry[0], entry[1]], cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Refuses a range some host principal already has: a user or group with such an id (it would pass the data
    /// directory's group and own every sandbox's files), or a subordinate range in /etc/subuid or /etc/subgid.
    /// </summary>
    public void EnsureRangeIsFree()
    {
        if (!UserNamespace)
        {
            return;
        }

        var taken = new List<string>();
        foreach (var file in new[] { "/etc/passwd", "/etc/group" }.Where(File.Exists))
        {
            taken.AddRange(File.ReadLines(file).Select(line => line.Split(':')).Where(f => f.Length > 2 && uint.TryParse(f[2], CultureInfo.InvariantCulture, out var id) && InRange(id, 1))
                .Select(f => $"{f[0]} ({f[2]}) in {file}"));
        }

        foreach (var file in new[] { "/etc/subuid", "/etc/subgid" }.Where(File.Exists))
        {
            taken.AddRange(File.ReadLines(file).Select(line => line.Split(':')).Where(f => f.Length > 2
                    && uint.TryParse(f[1], CultureInfo.InvariantCulture, out var start) && uint.TryParse(f[2], CultureInfo.InvariantCulture, out var count) && InRange(start, count))
                .Select(f => $"{f[0]}'s range {f[1]}+{f[2]} in {file}"));
        }

        if (taken.Count > 0)
        {
            throw new InvalidOperationException($"--userns maps sandboxes onto host ids {HostBase}-{HostBase + Size - 1}, which this host already gives to {string.Join("; ", taken)}");
        }

        static bool InRange(uint start, uint count) => start < HostBase + Size && (ulong)start + count > HostBase;
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
