using System.Runtime.InteropServices;

namespace Hands.Cli;

/// <summary>
/// For the long-running commands that hold an environment's credentials (<c>hands poll</c>, <c>hands webhook</c>, the
/// receiver in its sandbox): the process becomes non-dumpable before it reads them, so another process of the same user
/// — root in the receiver's sandbox included, which has no <c>CAP_SYS_PTRACE</c> — cannot read its environment or
/// memory through <c>/proc</c>, and it leaves no core dump.
/// </summary>
internal static partial class CredentialHolder
{
    private const int PrSetDumpable = 4;

    public static void BecomeNonDumpable()
    {
        if (OperatingSystem.IsLinux() && SetDumpable(PrSetDumpable, 0, 0, 0, 0) != 0)
        {
            throw new CliException($"could not make this process non-dumpable (errno {Marshal.GetLastPInvokeError()}); refusing to hold the environment's credentials");
        }
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int SetDumpable(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
