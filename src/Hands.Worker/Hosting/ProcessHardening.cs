using System.Runtime.InteropServices;

namespace Hands.Worker.Hosting;

/// <summary>
/// Makes the worker non-dumpable (<c>prctl(PR_SET_DUMPABLE, 0)</c>): its <c>/proc/PID/environ</c> and memory are then
/// readable only with <c>CAP_SYS_PTRACE</c>, which sandboxes do not grant. Tool commands run as the same user; without
/// this, any bash command could read the environment key, the work secret and the fork key out of the worker.
/// </summary>
internal static partial class ProcessHardening
{
    private const int PrSetDumpable = 4;

    public static void HideFromSameUser(WorkerLog log)
    {
        if (Prctl(PrSetDumpable, 0, 0, 0, 0) != 0)
        {
            log.Warn("could not make the worker non-dumpable; tool commands may read its environment", ("errno", Marshal.GetLastPInvokeError()));
        }
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
