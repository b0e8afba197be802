using System.Diagnostics;
using System.Threading.Channels;
using Hands.Common;

namespace Hands.SandboxDaemon.Processes;

/// <summary>
/// One process started through the API: its captured output (line by line, newline stripped), the live subscribers
/// of run and follow streams, its stdin pipe and how it ended.
/// </summary>
internal sealed class SandboxProcess : IDisposable
{
    /// <summary>Per-stream capture limit; older lines are dropped beyond it.</summary>
    public const long OutputCapacityBytes = 8L * 1024 * 1024;

    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly OutputLog _stdout = new(OutputCapacityBytes);
    private readonly OutputLog _stderr = new(OutputCapacityBytes);
    private readonly List<(Channel<OutputLine> Channel, string Filter)> _subscribers = [];
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly bool _captureStdout;
    private readonly bool _captureStderr;
    private int? _sentSignal;
    private bool _stdinOpen;
    private long? _oomKillsAtStart;

    public SandboxProcess(long handle, ProcessStartInfo startInfo, string command, IReadOnlyList<string> args, string? name, bool stdinPipe, bool captureStdout, bool captureStderr)
    {
        Handle = handle;
        Command = command;
        Args = [.. args];
        Name = name;
        _captureStdout = captureStdout;
        _captureStderr = captureStderr;
        _process = new Process { StartInfo = startInfo, EnableRaisingEvents = true };
        _process.OutputDataReceived += (_, e) => OnLine(e.Data, "stdout");
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data, "stderr");
        _stdinOpen = stdinPipe;
    }

    public long Handle { get; }
    public string Command { get; }
    public IReadOnlyList<string> Args { get; }
    public string? Name { get; }
    public int Pid { get; private set; }
    public DateTimeOffset StartedAt { get; private set; }
    public DateTimeOffset? EndedAt { get; private set; }
    public int? ExitCode { get; private set; }
    public int? Signal { get; private set; }

    /// <summary>It died by a SIGKILL the daemon did not send while the sandbox's OOM killer killed something: it ran out of memory.</summary>
    public bool OomKilled { get; private set; }
    public bool IsRunning => EndedAt is null;
    public bool StdinWritable { get { lock (_gate) { return _stdinOpen && IsRunning; } } }
    public Task Exited => _exited.Task;

    /// <summary>Starts the process; throws <see cref="System.ComponentModel.Win32Exception"/> when it cannot be spawned.</summary>
    public void Start()
    {
        _oomKillsAtStart = SandboxMemoryCgroup.OomKills();
        _process.Start();
        Pid = _process.Id;
        StartedAt = DateTimeOffset.UtcNow;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        if (!_stdinOpen)
        {
            _process.StandardInput.Close();
        }

        _ = WaitAsync();
    }

    private async Task WaitAsync()
    {
        // WaitForExitAsync also waits for the redirected streams to reach EOF, so every line is in before the exit.
        await _process.WaitForExitAsync().ConfigureAwait(false);
        var code = _process.ExitCode;
        lock (_gate)
        {
            // .NET reports a signal death as 128+N; it is a signal when we sent N, or SIGKILL from outside (OOM, kill -9).
            if (code > 128 && (code - 128 == _sentSignal || code == 128 + 9))
            {
                Signal = code - 128;
                // The OOM killer's SIGKILL looks like anyone's: the sandbox's cgroup counts the kills it made.
                OomKilled = Signal == 9 && _sentSignal != 9 && SandboxMemoryCgroup.KilledBetween(_oomKillsAtStart, SandboxMemoryCgroup.OomKills());
            }
            else
            {
                ExitCode = code;
            }

            EndedAt = DateTimeOffset.UtcNow;
            _stdinOpen = false;
            foreach (var (channel, _) in _subscribers)
            {
                channel.Writer.TryComplete();
            }

            _subscribers.Clear();
        }

        _exited.TrySetResult();
    }

    private void OnLine(string? line, string stream)
    {
        if (line is null || (stream == "stdout" ? !_captureStdout : !_captureStderr))
        {
            return;
        }

        var entry = new OutputLine(line, stream, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        lock (_gate)
        {
            (stream == "stdout" ? _stdout : _stderr).Append(line);
            foreach (var (channel, filter) in _subscribers)
            {
                if (filter == "output" || filter == stream)
                {
                    channel.Writer.TryWrite(entry);
                }
            }
        }
    }

    /// <summary>
    /// Captured lines so far plus a channel of the lines that follow (completed at exit). <paramref name="stream"/> is
    /// <c>stdout</c>, <c>stderr</c> or <c>output</c> (stdout lines, then stderr lines, as the reference daemon orders them).
    /// </summary>
    public (List<OutputLine> Replay, ChannelReader<OutputLine>? Live) Subscribe(string stream)
    {
        lock (_gate)
        {
            var replay = Captured(stream).Select(l => new OutputLine(l.Line, l.Stream, 0)).ToList();
            if (!IsRunning)
            {
                return (replay, null);
            }

            // Slow readers lose the oldest undelivered lines rather than holding the process's memory.
            var channel = Channel.CreateBounded<OutputLine>(new BoundedChannelOptions(4096) { FullMode = BoundedChannelFullMode.DropOldest, SingleReader = true });
            _subscribers.Add((channel, stream));
            return (replay, channel.Reader);
        }
    }

    public void Unsubscribe(ChannelReader<OutputLine> reader)
    {
        lock (_gate)
        {
            _subscribers.RemoveAll(s => s.Channel.Reader == reader);
        }
    }

    public List<(string Line, string Stream)> Captured(string stream)
    {
        lock (_gate)
        {
            var lines = new List<(string, string)>();
            if (stream is "stdout" or "output")
            {
                lines.AddRange(_stdout.Snapshot().Select(l => (l, "stdout")));
            }

            if (stream is "stderr" or "output")
            {
                lines.AddRange(_stderr.Snapshot().Select(l => (l, "stderr")));
            }

            return lines;
        }
    }

    public async Task<bool> WriteStdinAsync(Stream body, CancellationToken cancellationToken)
    {
        if (!StdinWritable)
        {
            return false;
        }

        try
        {
            await body.CopyToAsync(_process.StandardInput.BaseStream, cancellationToken).ConfigureAwait(false);
            await _process.StandardInput.BaseStream.FlushAsync(cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    public bool CloseStdin()
    {
        lock (_gate)
        {
            if (!_stdinOpen)
            {
                return false;
            }

            _stdinOpen = false;
        }

        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The reader is gone already; closed is what was asked for.
        }

        return true;
    }

    /// <summary>Sends <paramref name="signal"/> to the process; false when it has already ended.</summary>
    public bool SendSignal(int signal)
    {
        if (!IsRunning)
        {
            return false;
        }

        lock (_gate)
        {
            _sentSignal = signal;
        }

        return Native.Kill(Pid, signal) == 0;
    }

    /// <summary>SIGKILL to the process and everything it started.</summary>
    public void KillTree()
    {
        if (!IsRunning)
        {
            return;
        }

        lock (_gate)
        {
            _sentSignal = 9;
        }

        try
        {
            _process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill.
        }
    }

    public void Dispose() => _process.Dispose();
}

/// <summary>A captured line; <see cref="Timestamp"/> is 0 for replayed lines (the reference daemon's convention).</summary>
internal readonly record struct OutputLine(string Line, string Stream, long Timestamp);
