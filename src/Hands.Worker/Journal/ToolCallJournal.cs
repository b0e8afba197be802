using System.Text;
using System.Text.Json;
using Hands.Worker.Hosting;
using Hands.Worker.Tools;

namespace Hands.Worker.Journal;

/// <summary>
/// The write-ahead journal that makes tool execution at-most-once across workers: a call is recorded as started (on
/// disk, flushed) before it runs, with the processes it runs in, and as finished with its result before that result is
/// posted. It lives in the session's sandbox, which outlives its workers, so the worker that replaces a killed one
/// finds it: a finished call's result is posted as computed, a started one is not run again (<see cref="Runner.SessionToolRunner"/>).
/// One file per session; posted calls are dropped when the file is next opened, and the file goes once nothing is
/// outstanding. A line cut short by a crash is ignored.
/// </summary>
internal sealed class ToolCallJournal
{
    private readonly string _path;
    private readonly WorkerLog _log;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, JournaledCall> _previous;
    private readonly HashSet<string> _open = new(StringComparer.Ordinal);
    private string? _running;

    private ToolCallJournal(string path, WorkerLog log, TimeProvider time, Dictionary<string, JournaledCall> previous)
    {
        _path = path;
        _log = log;
        _time = time;
        _previous = previous;
    }

    /// <summary>The journal file of <paramref name="sessionId"/> under <paramref name="directory"/>.</summary>
    public static string PathFor(string directory, string sessionId)
    {
        var safe = new string([.. sessionId.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_')]);
        return System.IO.Path.Combine(directory, safe + ".journal");
    }

    /// <summary>
    /// Opens (or creates) the journal at <paramref name="path"/>: reads what previous workers left, keeps only calls
    /// without a posted result, and rewrites the file to just those.
    /// </summary>
    public static ToolCallJournal Open(string path, WorkerLog log, TimeProvider? time = null)
    {
        var directory = System.IO.Path.GetDirectoryName(path)!;
        // Root-only where the worker is root (in a sandbox); the agent's own commands may run as the same user, which
        // gains them nothing they could not print from a command of their own (docs/worker.md).
        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var entries = File.Exists(path) ? Read(path, log) : [];
        var posted = entries.Where(e => e.State == JournalStates.Posted).Select(e => e.Call).ToHashSet(StringComparer.Ordinal);
        var kept = entries.Where(e => !posted.Contains(e.Call)).ToList();
        try
        {
            Rewrite(path, kept);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The old file holds everything the new one would: keep using it.
            log.Warn("journal: could not compact; keeping it as it is", ("path", path), ("error", ex.Message));
        }

        var previous = kept.GroupBy(e => e.Call, StringComparer.Ordinal).ToDictionary(g => g.Key, Summarize, StringComparer.Ordinal);
        if (previous.Count > 0)
        {
            log.Info("journal: calls a previous worker started without posting a result", ("calls", previous.Count));
        }

        return new ToolCallJournal(path, log, time ?? TimeProvider.System, previous);
    }

    /// <summary>The path of the journal file.</summary>
    public string Path => _path;

    /// <summary>What a previous worker recorded about <paramref name="callId"/>, when it started the call and posted nothing.</summary>
    public JournaledCall? Previous(string callId)
    {
        lock (_gate)
        {
            return _previous.GetValueOrDefault(callId);
        }
    }

    /// <summary>Records that <paramref name="callId"/> is about to run (flushed to disk before it does).</summary>
    public void Started(string callId, string tool)
    {
        Append(new JournalEntry { Call = callId, State = JournalStates.Started, Tool = tool, Since = OrphanedProcesses.NowTicks() }, durable: true);
        Volatile.Write(ref _running, callId);
    }

    /// <summary>
    /// Records a helper process the running call runs in, so a successor can stop it (the tools report their processes
    /// through <see cref="ToolContext.HelperProcessStarted"/>; calls run one at a time).
    /// </summary>
    public void ProcessStarted(int pid)
    {
        if (Volatile.Read(ref _running) is { } callId && OrphanedProcesses.StartTimeOf(pid) is { } start)
        {
            Append(new JournalEntry { Call = callId, State = JournalStates.Process, Pid = pid, PidStart = start }, durable: true);
        }
    }

    /// <summary>Records <paramref name="callId"/>'s result before it is posted (flushed to disk).</summary>
    public void Finished(string callId, ToolOutput output)
    {
        Interlocked.CompareExchange(ref _running, null, callId);
        Append(new JournalEntry { Call = callId, State = JournalStates.Finished, IsError = output.IsError, Content = [.. output.Content] }, durable: true);
    }

    /// <summary>A result for <paramref name="callId"/> is in the session (whoever posted it): nothing is left to inherit.</summary>
    public void Settled(string callId)
    {
        lock (_gate)
        {
            _previous.Remove(callId);
        }
    }

    /// <summary>Records that <paramref name="callId"/>'s result is in the session; removes the file once nothing is outstanding.</summary>
    public void Posted(string callId)
    {
        lock (_gate)
        {
            _previous.Remove(callId);
            _open.Remove(callId);
            if (_open.Count == 0 && _previous.Count == 0)
            {
                try
                {
                    File.Delete(_path);
                    return;
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    _log.Warn("journal: could not remove it; recording the post instead", ("path", _path), ("error", ex.Message));
                }
            }
        }

        Append(new JournalEntry { Call = callId, State = JournalStates.Posted }, durable: false);
    }

    private void Append(JournalEntry entry, bool durable)
    {
        entry.At = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var line = JsonSerializer.SerializeToUtf8Bytes(entry, JournalJsonContext.Default.JournalEntry);
        lock (_gate)
        {
            if (entry.State != JournalStates.Posted)
            {
                _open.Add(entry.Call);
            }

            try
            {
                using var file = new FileStream(_path, new FileStreamOptions
                {
                    Mode = FileMode.Append,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
                file.Write(line);
                file.WriteByte((byte)'\n');
                file.Flush(flushToDisk: durable);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A full disk must not stop the session: the call then runs without the at-most-once record.
                _log.Warn("journal: could not record a tool call; a successor could not tell it ran", ("call", entry.Call), ("error", ex.Message));
            }
        }
    }

    private static List<JournalEntry> Read(string path, WorkerLog log)
    {
        var entries = new List<JournalEntry>();
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            try
            {
                if (line.Length > 0 && JsonSerializer.Deserialize(line, JournalJsonContext.Default.JournalEntry) is { Call.Length: > 0 } entry)
                {
                    entries.Add(entry);
                }
            }
            catch (JsonException)
            {
                log.Warn("journal: skipping a line cut short (a crash while writing it)", ("path", path));
            }
        }

        return entries;
    }

    private static void Rewrite(string path, List<JournalEntry> entries)
    {
        if (entries.Count == 0)
        {
            File.Delete(path);
            return;
        }

        var temporary = path + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            foreach (var entry in entries)
            {
                file.Write(JsonSerializer.SerializeToUtf8Bytes(entry, JournalJsonContext.Default.JournalEntry));
                file.WriteByte((byte)'\n');
            }

            file.Flush(flushToDisk: true);
        }

        File.Move(temporary, path, overwrite: true);
    }

    private static JournaledCall Summarize(IGrouping<string, JournalEntry> lines)
    {
        var finished = lines.LastOrDefault(e => e.State == JournalStates.Finished);
        var started = lines.FirstOrDefault(e => e.State == JournalStates.Started);
        return new JournaledCall(
            started?.Tool ?? "",
            // An entry without a start time (cut short) spares nothing it cannot date: only the recorded process goes.
            started?.Since ?? long.MaxValue,
            [.. lines.Where(e => e is { State: JournalStates.Process, Pid: not null, PidStart: not null }).Select(e => (e.Pid!.Value, e.PidStart!.Value))],
            finished is null ? null : new ToolOutput(finished.Content ?? [], finished.IsError ?? false));
    }
}
