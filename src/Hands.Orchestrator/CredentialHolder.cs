using System.Runtime.InteropServices;

namespace Hands.Orchestrator;

/// <summary>
/// For the processes that hold an environment's credentials (<c>hands poll</c>, <c>hands webhook</c>,
/// <c>hands-receiver</c>): non-dumpable (<c>prctl(PR_SET_DUMPABLE, 0)</c>) before they are read, so nothing of the same
/// user — the receiver's sandbox root included, which has no <c>CAP_SYS_PTRACE</c> — reads them out of <c>/proc</c>, and
/// no core dump carries them.
/// </summary>
public static partial class CredentialHolder
{
    private const int PrSetDumpable = 4;

    /// <summary>Makes this process non-dumpable, or throws: holding the credentials otherwise would expose them.</summary>
    public static void BecomeNonDumpable()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        if (Prctl(PrSetDumpable, 0, 0, 0, 0) != 0)
        {
            throw new OrchestratorException($"could not make this process non-dumpable (errno {Marshal.GetLastPInvokeError()}); refusing to hold the environment's credentials");
        }
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
