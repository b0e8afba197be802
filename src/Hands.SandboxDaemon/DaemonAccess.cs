using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Hands.Hosting;
using Hands.SandboxDaemon.Endpoints;

namespace Hands.SandboxDaemon;

/// <summary>
/// Who may talk to the daemon: only the holder of the per-sandbox token the engine wrote into the sandbox before the
/// daemon started. The daemon reads the token file and deletes it before it listens, so no process the daemon starts
/// afterwards can find it; the daemon is non-dumpable, so those processes (root included: sandboxes have no
/// <c>CAP_SYS_PTRACE</c>) cannot read it out of its memory or <c>/proc/1/…</c> either. Inside the sandbox the engine's
/// firewall also refuses the daemon's port to everything but the engine's side of the veth.
/// </summary>
internal sealed partial class DaemonAccess
{
    /// <summary>Where the engine writes the token (a fresh boot only: a restored daemon has it in memory).</summary>
    public const string DefaultTokenFile = "/run/hands-sandboxd.token";

    private const int PrSetDumpable = 4;

    private readonly byte[] _expected;

    private DaemonAccess(byte[] expected) => _expected = expected;

    /// <summary>Makes the daemon non-dumpable, then reads and deletes the token file; null (with the reason) when it cannot.</summary>
    public static DaemonAccess? Load(string tokenFile, out string? problem)
    {
        if (Prctl(PrSetDumpable, 0, 0, 0, 0) != 0)
        {
            problem = $"could not make the daemon non-dumpable (errno {Marshal.GetLastPInvokeError()})";
            return null;
        }

        byte[] token;
        try
        {
            token = File.ReadAllBytes(tokenFile);
            File.Delete(tokenFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            problem = $"the access token file {tokenFile} could not be read and removed: {ex.Message}";
            return null;
        }

        var trimmed = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(token).Trim());
        CryptographicOperations.ZeroMemory(token);
        if (trimmed.Length < 32)
        {
            problem = $"the access token in {tokenFile} is shorter than 32 characters";
            return null;
        }

        problem = null;
        return new DaemonAccess(trimmed);
    }

    /// <summary>Answers 401 to a request without <c>Authorization: Bearer &lt;token&gt;</c>; otherwise passes it on.</summary>
    public async Task CheckAsync(HttpContext context, RequestDelegate next)
    {
        if (!BearerToken.Matches(BearerToken.Of(context.Request), _expected))
        {
            await DaemonResponses.Error(context, 401, "UNAUTHORIZED", "the sandbox daemon answers only the engine").ConfigureAwait(false);
            return;
        }

        await next(context).ConfigureAwait(false);
    }

    [LibraryImport("libc", EntryPoint = "prctl", SetLastError = true)]
    private static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
