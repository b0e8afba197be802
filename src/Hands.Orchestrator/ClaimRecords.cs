using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// One work item this orchestrator has polled and not yet seen through: which item, of which session and environment,
/// since when. Nothing secret: the item's work secret and sessions token never reach the record.
/// </summary>
/// <param name="EnvironmentId">The environment whose queue the item came from.</param>
/// <param name="WorkId">The work item.</param>
/// <param name="SessionId">The session the item serves (its sandbox is named after it).</param>
/// <param name="ClaimedAt">When the poll returned the item, on the orchestrator's clock.</param>
public sealed record ClaimRecord(
    [property: JsonPropertyName("environment_id")] string EnvironmentId,
    [property: JsonPropertyName("work_id")] string WorkId,
    [property: JsonPropertyName("session_id")] string SessionId,
    [property: JsonPropertyName("claimed_at")] DateTimeOffset ClaimedAt);

/// <summary>
/// The durable record of an orchestrator's in-flight claims: one small JSON file per work item in an owner-only (0700)
/// directory beside the orchestrator's lock (<see cref="OrchestratorLock.ClaimsDirectory"/>). A claim is recorded right
/// after the poll returns the item, before it is acknowledged, and removed when the item's spawn ends, however it
/// ends; what is left after a SIGKILL is exactly what the next <see cref="WorkQueueOrchestrator"/> must settle at start.
/// </summary>
/// <remarks>
/// Only the holder of the lock may use the directory: the lock is what makes this process its only writer, so the
/// in-memory view of which record is current is authoritative (a finished spawn removes its own record, never a later
/// claim's of the same item). A record is written to a temporary file, flushed to disk, renamed over its name and the
/// directory flushed, so a reader sees a whole record or none; a file that does not parse (written by hand, or on a
/// filesystem that broke that promise) is reported and removed, never fatal.
/// </remarks>
public sealed partial class ClaimRecords
{
    private const string Extension = ".json";
    private const string TempPrefix = ".tmp-";
    private const int MaxRecordBytes = 4096;
    private const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ClaimRecord> _current = new(StringComparer.Ordinal);

    /// <summary>Opens (creating it with mode 0700, or setting it to 0700) the record directory.</summary>
    /// <exception cref="OrchestratorException">The path is a symbolic link or not a directory this user may own.</exception>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public ClaimRecords(string directory, ILogger logger)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(logger);
        Directory = Path.GetFullPath(directory);
        _logger = logger;
        try
        {
            if (new DirectoryInfo(Directory) is { Exists: true, LinkTarget: not null })
            {
                // Beside a lock in /tmp: a link planted by someone else would send the records, or read them, elsewhere.
                throw new OrchestratorException($"the claims directory {Directory} is a symbolic link; remove it (it is recreated) or set ORCHESTRATOR_LOCK_FILE elsewhere");
            }

            System.IO.Directory.CreateDirectory(Directory, DirectoryMode);
            // chmod succeeds only for the owner (or root), so a non-root orchestrator also refuses a directory someone
            // else made there.
            File.SetUnixFileMode(Directory, DirectoryMode);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new OrchestratorException($"the claims directory {Directory} cannot be made owner-only: {ex.Message}", ex);
        }
    }

    /// <summary>The directory the records live in.</summary>
    public string Directory { get; }

    /// <summary>
    /// Records a claim durably and returns it; <see cref="Remove"/> with the returned instance removes exactly this
    /// claim's record. A record that cannot be written is logged and the claim goes on without one (it is then, as
    /// before records existed, settled by its lease's lapse if this orchestrator dies).
    /// </summary>
    public ClaimRecord Record(string environmentId, string workId, string sessionId, DateTimeOffset claimedAt)
    {
        var record = new ClaimRecord(environmentId, workId, sessionId, claimedAt);
        lock (_gate)
        {
            _current[workId] = record;
            try
            {
                Write(PathFor(workId), JsonSerializer.SerializeToUtf8Bytes(record, ClaimRecordsJsonContext.Default.ClaimRecord));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning("claim of work {Work} could not be recorded in {Directory}: {Error}", workId, Directory, ex.Message);
            }
        }

        return record;
    }

    /// <summary>Removes <paramref name="record"/>'s file, unless a later claim of the same item has recorded itself since.</summary>
    public void Remove(ClaimRecord record)
    {
        ArgumentNullException.ThrowIfNull(record);
        lock (_gate)
        {
            if (_current.TryGetValue(record.WorkId, out var current) && ReferenceEquals(current, record))
            {
                _current.Remove(record.WorkId);
                Delete(record.WorkId);
            }
        }
    }

    /// <summary>
    /// Removes the record a previous orchestrator left for <paramref name="workId"/> (recovery has settled it), unless
    /// this orchestrator has claimed the item again since and the file is that claim's.
    /// </summary>
    public void Drop(string workId)
    {
        lock (_gate)
        {
            if (!_current.ContainsKey(workId))
            {
                Delete(workId);
            }
        }
    }

    /// <summary>
    /// Every record in the directory, in no particular order. Files that are not records (a torn or garbage file, a
    /// temporary file a crash left mid-write, anything but a regular file) are reported and removed, never thrown.
    /// </summary>
    public IReadOnlyList<ClaimRecord> ReadAll()
    {
        // Under the gate: a temporary file of a write under way must not be taken for one a crash left.
        lock (_gate)
        {
            return ReadAllLocked();
        }
    }

    private List<ClaimRecord> ReadAllLocked()
    {
        var records = new List<ClaimRecord>();
        foreach (var entry in new DirectoryInfo(Directory).EnumerateFileSystemInfos())
        {
            if (entry.Name.StartsWith(TempPrefix, StringComparison.Ordinal))
            {
                // A write cut short: its claim was never recorded, and the item (not yet acknowledged) comes back by itself.
                TryDelete(entry);
                continue;
            }

            var (record, why) = entry is FileInfo { LinkTarget: null } file ? TryRead(file) : (null, "not a regular file");
            if (record is null)
            {
                _logger.LogWarning("ignoring {File} in the claims directory ({Why}); removed", entry.Name, why);
                TryDelete(entry);
                continue;
            }

            records.Add(record);
        }

        return records;
    }

    private static (ClaimRecord? Record, string Why) TryRead(FileInfo file)
    {
        if (!file.Name.EndsWith(Extension, StringComparison.Ordinal))
        {
            return (null, "not a claim record's name");
        }

        if (file.Length > MaxRecordBytes)
        {
            return (null, "too large to be a claim record");
        }

        try
        {
            var record = JsonSerializer.Deserialize(File.ReadAllBytes(file.FullName), ClaimRecordsJsonContext.Default.ClaimRecord);
            return record is { EnvironmentId.Length: > 0, WorkId.Length: > 0, SessionId.Length: > 0 }
                ? (record, "")
                : (null, "a record without its ids");
        }
        catch (JsonException ex)
        {
            return (null, "not a whole claim record: " + ex.Message);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return (null, "unreadable: " + ex.Message);
        }
    }

    private void TryDelete(FileSystemInfo entry)
    {
        try
        {
            if (entry is DirectoryInfo { LinkTarget: null } directory)
            {
                directory.Delete(recursive: true);
            }
            else
            {
                entry.Delete();
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("could not remove {File} from the claims directory: {Error}", entry.Name, ex.Message);
        }
    }

    private void Delete(string workId)
    {
        try
        {
            File.Delete(PathFor(workId));
            FlushDirectory(Directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Left behind, the next start settles it again: a claim already settled is found settled then.
            _logger.LogWarning("record of work {Work} could not be removed from {Directory}: {Error}", workId, Directory, ex.Message);
        }
    }

    private void Write(string path, byte[] content)
    {
        var temp = Path.Combine(Directory, TempPrefix + Guid.NewGuid().ToString("N"));
        var create = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            create.UnixCreateMode = FileMode;
        }

        try
        {
            using (var stream = new FileStream(temp, create))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
            }

            throw;
        }

        // The rename is durable only once the directory is: without this a power cut could lose a record that was written.
        FlushDirectory(Directory);
    }

    /// <summary>The record's file: the work id itself when it is a plain name (ids are <c>work_...</c>), else a digest of it.</summary>
    private string PathFor(string workId)
    {
        var plain = workId.Length is > 0 and <= 128 && workId.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');
        var name = plain ? workId : "x" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(workId)))[..40];
        return Path.Combine(Directory, name + Extension);
    }

    private static void FlushDirectory(string directory)
    {
        // .NET opens no directory for writing or flushing, so this is open(2) and fsync(2) directly.
        var fd = Open(directory, ORdOnly);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"open {directory}: {Marshal.GetPInvokeErrorMessage(errno)}");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fsync {directory}: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    // 0 everywhere; O_DIRECTORY and O_CLOEXEC differ between architectures and systems, and a read-only open of a
    // directory needs neither.
    private const int ORdOnly = 0;

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

[JsonSerializable(typeof(ClaimRecord))]
internal sealed partial class ClaimRecordsJsonContext : JsonSerializerContext;
