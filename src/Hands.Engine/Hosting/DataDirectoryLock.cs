using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Hands.Engine.Hosting;

/// <summary>
/// One engine per data directory: an exclusive <c>flock</c> on <c>{data}/engine.lock</c>, taken before the engine
/// touches anything there and held for its lifetime. Two engines on one directory would both "recover" it — each
/// removing the other's containers as orphans, mounting and growing one volume — so the second is refused at start,
/// naming the holder's pid (written into the file by the holder).
/// <para>
/// The kernel drops the lock when the holder's last descriptor closes, so a crashed engine (kill -9, the OOM killer)
/// leaves nothing to clean up. The descriptor is opened with <c>O_CLOEXEC</c> (set here explicitly): runc, CRIU
/// and the sandboxes' processes the engine starts never inherit it, so a sandbox that outlives its engine does not
/// keep the next one out. The flock is taken explicitly rather than through <see cref="FileShare.None"/>, which
/// <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> can turn off.
/// </para>
/// </summary>
internal sealed partial class DataDirectoryLock : IDisposable
{
    private const int ReadWrite = 0x2;
    private const int Create = 0x40;
    private const int CloseOnExec = 0x80000;
    private const uint OwnerReadWrite = 0x180;
    private const int LockExclusive = 2;
    private const int LockNonBlocking = 4;
    private const int WouldBlock = 11;

    private readonly SafeFileHandle _handle;

    private DataDirectoryLock(SafeFileHandle handle, string path)
    {
        _handle = handle;
        FilePath = path;
    }

    /// <summary>The lock file.</summary>
    public string FilePath { get; }

    /// <summary>The lock file of <paramref name="dataDirectory"/>.</summary>
    public static string PathIn(string dataDirectory) => Path.Combine(dataDirectory, "engine.lock");

    /// <summary>
    /// Takes the lock without waiting; <see cref="DataDirectoryInUseException"/> when another process holds it.
    /// </summary>
    public static DataDirectoryLock Acquire(string dataDirectory)
    {
        var path = PathIn(dataDirectory);
        // open(2) itself rather than through .NET, whose FileShare handling takes flocks of its own on the descriptor.
        var fd = Open(path, ReadWrite | Create | CloseOnExec, OwnerReadWrite);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"opening {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            if (Flock(handle, LockExclusive | LockNonBlocking) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno != WouldBlock)
                {
                    throw new IOException($"locking {path} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
                }

                throw new DataDirectoryInUseException(dataDirectory, path, HolderOf(handle));
            }

            // The pid is for the refusal message only; the lock itself is the kernel's.
            var pid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            RandomAccess.SetLength(handle, 0);
            RandomAccess.Write(handle, pid, 0);
            return new DataDirectoryLock(handle, path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The pid the holder wrote, when it has written one yet (it writes right after locking).</summary>
    private static int? HolderOf(SafeFileHandle handle)
    {
        var buffer = new byte[32];
        var read = RandomAccess.Read(handle, buffer, 0);
        return int.TryParse(Encoding.ASCII.GetString(buffer, 0, read).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    /// <summary>Releases the lock (closing the descriptor releases it; the file stays, empty of meaning).</summary>
    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint Open(string path, int flags, uint mode);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int Flock(SafeFileHandle fd, int operation);
}

/// <summary>Another process (an engine) holds the data directory's lock; the engine refuses to start on it.</summary>
public sealed class DataDirectoryInUseException : EngineException
{
    /// <summary>Refuses <paramref name="dataDirectory"/>, whose lock file <paramref name="lockFile"/> is held by <paramref name="holderPid"/> (null when unknown).</summary>
    public DataDirectoryInUseException(string dataDirectory, string lockFile, int? holderPid)
        : base(409, $"another engine is using the data directory {dataDirectory}: {Describe(holderPid)} holds {lockFile}. " +
            "Stop it first, or start this engine with another --data directory")
    {
        DataDirectory = dataDirectory;
        HolderPid = holderPid;
    }

    /// <summary>The data directory that was refused.</summary>
    public string DataDirectory { get; } = "";

    /// <summary>The pid of the process holding the lock, when it could be read.</summary>
    public int? HolderPid { get; }

    private static string Describe(int? pid)
    {
        if (pid is not { } holder)
        {
            return "a process that has not yet written its pid";
        }

        // The command line helps an operator recognise it (a `hands engine` under another name, a test host).
        var cmdline = $"/proc/{holder}/cmdline";
        var command = File.Exists(cmdline) ? File.ReadAllText(cmdline).Replace('\0', ' ').Trim() : "";
        return command.Length > 0 ? $"pid {holder} ({(command.Length > 120 ? command[..120] + "…" : command)})" : $"pid {holder}";
    }
}
