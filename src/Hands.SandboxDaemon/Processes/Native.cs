using System.Runtime.InteropServices;

namespace Hands.SandboxDaemon.Processes;

internal static partial class Native
{
    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);
}
