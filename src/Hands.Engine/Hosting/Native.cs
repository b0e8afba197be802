using System.Runtime.InteropServices;

namespace Hands.Engine.Hosting;

/// <summary>The few syscalls the engine makes itself: mount(2), umount2(2) and lchown(2) are cheaper than spawning a tool.</summary>
internal static partial class Native
{
    public const int MntDetach = 2;

    [LibraryImport("libc", EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Mount(string source, string target, string fileSystemType, ulong flags, string? data);

    [LibraryImport("libc", EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Unmount(string target, int flags);

    [LibraryImport("libc", EntryPoint = "lchown", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LChownRaw(string path, uint owner, uint group);

    /// <summary>Sets a path's owner without following a symbolic link; throws with errno's meaning on failure.</summary>
    public static void LChown(string path, uint owner, uint group)
    {
        if (LChownRaw(path, owner, group) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"chown {owner}:{group} {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEffectiveUserId();

    /// <summary>setsid(2): a new session, so the terminal's Ctrl-C and hang-up of the process that started it do not reach it.</summary>
    [LibraryImport("libc", EntryPoint = "setsid", SetLastError = true)]
    public static partial int SetSid();

    /// <summary>dup2(2): makes <paramref name="newFd"/> a copy of <paramref name="oldFd"/> (used to point stdout and stderr at a log file).</summary>
    [LibraryImport("libc", EntryPoint = "dup2", SetLastError = true)]
    public static partial int Dup2(int oldFd, int newFd);

    /// <summary>Mounts an overlay; throws with errno's meaning on failure.</summary>
    public static void MountOverlay(string target, IReadOnlyList<string> lowerTopFirst, string upper, string work)
    {
        var data = $"lowerdir={string.Join(':', lowerTopFirst)},upperdir={upper},workdir={work}";
        if (Mount("overlay", target, "overlay", 0, data) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new EngineCommandException($"mounting the overlay at {target} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    /// <summary>Bind-mounts <paramref name="source"/> at <paramref name="target"/> (which must exist); throws with errno's meaning on failure.</summary>
    public static void BindMount(string source, string target)
    {
        const ulong msBind = 4096;
        if (Mount(source, target, "", msBind, null) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new EngineCommandException($"bind-mounting {source} at {target} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }
    }

    /// <summary>Lazily unmounts <paramref name="target"/>; true when it was mounted.</summary>
    public static bool TryUnmount(string target) => Unmount(target, MntDetach) == 0;

    /// <summary>Mount points at or under <paramref name="prefix"/>, deepest first (from /proc/self/mountinfo).</summary>
    public static IReadOnlyList<string> MountsUnder(string prefix)
    {
        var root = prefix.TrimEnd('/');
        return [.. File.ReadLines("/proc/self/mountinfo")
            .Select(line => line.Split(' '))
            .Where(fields => fields.Length > 4)
            .Select(fields => Unescape(fields[4]))
            .Where(path => path == root || path.StartsWith(root + "/", StringComparison.Ordinal))
            .Distinct()
            .OrderByDescending(path => path.Length)];
    }

    private static string Unescape(string field) =>
        field.Replace("\\040", " ", StringComparison.Ordinal).Replace("\\011", "\t", StringComparison.Ordinal).Replace("\\012", "\n", StringComparison.Ordinal).Replace("\\134", "\\", StringComparison.Ordinal);
}
