using System.Globalization;
using System.Runtime.InteropServices;

namespace Hands.Engine.Hosting;

/// <summary>
/// Keeps the descriptors a process was started with (beyond stdin, stdout and stderr) from the children it starts.
/// Whatever started <c>hands</c> may have left one open without close-on-exec: the lock of <c>flock FILE hands
/// engine</c>, a socket of a supervisor. The engine's host-port forwarder and its sandboxes outlive the engine by design,
/// so a copy held by them would keep that lock or socket alive after the engine is gone. .NET opens its own descriptors
/// close-on-exec already; this marks the inherited ones too, so no child started afterwards receives them. The process
/// itself keeps them (closing a descriptor it did not open could cut what its starter still relies on).
/// </summary>
public static partial class InheritedDescriptors
{
    private const int CloseRangeCloexec = 4;
    private const int GetDescriptorFlags = 1;
    private const int SetDescriptorFlags = 2;
    private const int CloseOnExec = 1;

    /// <summary>Marks every descriptor from 3 up close-on-exec.</summary>
    public static void KeepFromChildren()
    {
        try
        {
            // close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11, glibc 2.34): all of them in one call.
            if (CloseRange(3, uint.MaxValue, CloseRangeCloexec) == 0)
            {
                return;
            }
        }
        catch (EntryPointNotFoundException)
        {
            // An older C library: one by one below.
        }

        foreach (var entry in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
        {
            if (int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var fd) && fd >= 3)
            {
                var flags = Fcntl(fd, GetDescriptorFlags, 0);
                if (flags >= 0)
                {
                    _ = Fcntl(fd, SetDescriptorFlags, flags | CloseOnExec);
                }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "close_range", SetLastError = true)]
    private static partial int CloseRange(uint first, uint last, int flags);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);
}
