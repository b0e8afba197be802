using System.Runtime.InteropServices;

namespace Hands.Worker.Hosting;

/// <summary>
/// Makes a process that holds credentials non-dumpable (<c>prctl(PR_SET_DUMPABLE, 0)</c>): its <c>/proc/PID/environ</c>
/// and memory are then readable only with <c>CAP_SYS_PTRACE</c>, which sandboxes do not grant, and it leaves no core
/// dump. Tool commands run as the worker's user; without this, any bash command could read the work secret and the
/// fork key out of the worker. (The orchestrator processes have their own, Hands.Orchestrator.CredentialHolder.)
/// </summary>
public static partial class ProcessHardening
{
    private const int PrSetDumpable = 4;

    /// <summary>Makes this process non-dumpable; false (with errno) when the kernel refused or this is not Linux.</summary>
    /// <param name="errno">The error when it failed, else 0.</param>
    public static bool TryBecomeNonDumpable(out int errno)
    {
        errno = 0;
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }

        if (Prctl(PrSetDumpable, 0, 0, 0, 0) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            return false;
        }

        return true;
    }

    internal static void HideFromSameUser(WorkerLog log)
    {
        if (!TryBecomeNonDumpable(out var errno))
        {
            log.Warn("could not make the worker non-dumpable; tool commands may read its environment", ("errno", errno));
        }
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
