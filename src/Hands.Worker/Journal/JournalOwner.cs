using System.Collections.Concurrent;
using System.Globalization;
using Hands.Worker.Hosting;

namespace Hands.Worker.Journal;

/// <summary>
/// One worker at a time serves a session's journal. Two can meet in one sandbox when a lease lapses while its worker
/// still runs (a network cut, a stalled heartbeat): the successor that now holds the lease must not compact the journal
/// under the first, take its running call for an interrupted one, or answer a call the first will answer too. So a
/// worker marks the journal as its own (<c>{journal}.owner</c>: its pid and command name) before opening it, and a
/// successor that finds a live owner waits for it to let go (the first ends its session run within a heartbeat of
/// losing the lease, cancelling its call); if it has not let go within the bound, the successor does not serve the item
/// (it lapses and is claimed again later) rather than risk running anything twice.
/// </summary>
/// <remarks>
/// A marker file, not a held lock: CRIU refuses to dump a task that holds a file lock, and the sandbox of an attached
/// worker must stay snapshotable. The owner is identified by pid and command name (not start time: a process CRIU
/// restored reports its restore as its start). A marker whose pid is gone, or is another program, is stale (a killed
/// worker, or a copy in a fork whose inherited processes were killed) and is replaced. Two successors cannot race for
/// a stale marker: each holds the item's lease, which only one holds at a time.
/// </remarks>
internal sealed class JournalOwner : IDisposable
{
    private static readonly ConcurrentDictionary<string, byte> HeldHere = new(StringComparer.Ordinal);
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(200);
    private readonly string _path;
    private readonly string _mark;
    private int _released;

    private JournalOwner(string path, string mark)
    {
        _path = path;
        _mark = mark;
    }

    /// <summary>The marker file of a journal.</summary>
    public static string PathFor(string journalPath) => journalPath + ".owner";

    /// <summary>
    /// Marks <paramref name="journalPath"/> as this worker's, waiting up to <paramref name="wait"/> for a live owner to
    /// let go; throws <see cref="JournalBusyException"/> when it does not.
    /// </summary>
    public static async Task<JournalOwner> AcquireAsync(string journalPath, TimeSpan wait, WorkerLog log, TimeProvider time, CancellationToken cancellationToken)
    {
        try
        {
            return await AcquireCoreAsync(PathFor(journalPath), wait, log, time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Like the journal itself: a state directory that cannot be written must not stop the session.
            log.Warn("journal: cannot mark it as this worker's; serving without the mark", ("path", journalPath), ("error", ex.Message));
            return new JournalOwner(PathFor(journalPath), mark: "") { _released = 1 };
        }
    }

    private static async Task<JournalOwner> AcquireCoreAsync(string path, TimeSpan wait, WorkerLog log, TimeProvider time, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var self = Environment.ProcessId;
        var mark = $"{self.ToString(CultureInfo.InvariantCulture)} {CommandName(self)}\n";
        var deadline = time.GetUtcNow() + wait;
        var waiting = false;
        while (true)
        {
            if (HeldHere.TryAdd(path, 0))
            {
                (int Pid, string Command)? owner;
                try
                {
                    if (TryCreate(path, mark))
                    {
                        return new JournalOwner(path, mark);
                    }

                    owner = ReadOwner(path);
                    if (owner is null || !IsLive(owner.Value, self))
                    {
                        // Stale: a killed worker's, or copied into a fork. Replaced, not honoured.
                        log.Info("journal: replacing the mark of a worker that is gone", ("owner_pid", owner?.Pid ?? 0));
                        File.Delete(path);
                        if (TryCreate(path, mark))
                        {
                            return new JournalOwner(path, mark);
                        }
                    }
                }
                catch
                {
                    HeldHere.TryRemove(path, out _);
                    throw;
                }

                HeldHere.TryRemove(path, out _);
                if (!waiting)
                {
                    log.Warn("journal: another worker of this session is still running here; waiting for it to let go", ("owner_pid", owner?.Pid ?? 0));
                    waiting = true;
                }
            }

            if (time.GetUtcNow() >= deadline)
            {
                throw new JournalBusyException($"another worker of this session is still running in this sandbox (pid {ReadOwner(path)?.Pid.ToString(CultureInfo.InvariantCulture) ?? "gone"}) after {wait.TotalSeconds:0} s; not serving this item, so no call runs twice");
            }

            await Task.Delay(Poll, time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Lets go: removes the marker, if it is still this worker's.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 1)
        {
            return;
        }

        try
        {
            if (File.Exists(_path) && File.ReadAllText(_path) == _mark)
            {
                File.Delete(_path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A marker left behind names this pid; once this process is gone it reads as stale.
        }
        finally
        {
            HeldHere.TryRemove(_path, out _);
        }
    }

    private static bool TryCreate(string path, string mark)
    {
        try
        {
            using var file = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            file.Write(System.Text.Encoding.UTF8.GetBytes(mark));
            file.Flush(flushToDisk: true);
            return true;
        }
        catch (IOException) when (File.Exists(path))
        {
            return false;
        }
    }

    private static (int Pid, string Command)? ReadOwner(string path)
    {
        try
        {
            var parts = File.ReadAllText(path).Trim().Split(' ', 2);
            return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? (pid, parts[1]) : null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The owner still runs: its pid is alive with the same command name. A mark naming this very process is live only
    /// while a session run in this process holds it (checked by the caller through <see cref="HeldHere"/>): otherwise
    /// it is a copy (a fork whose new worker got the old pid) or left by a run that ended without letting go.
    /// </summary>
    private static bool IsLive((int Pid, string Command) owner, int self) =>
        owner.Pid != self && CommandName(owner.Pid) is { } command && command == owner.Command;

    private static string? CommandName(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/comm").Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}

/// <summary>The session's journal is held by another live worker in this sandbox.</summary>
internal sealed class JournalBusyException(string message) : Exception(message);
