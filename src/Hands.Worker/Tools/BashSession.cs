using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Hands.Worker.Tools;

/// <summary>
/// One persistent <c>/bin/bash --noprofile --norc</c>, driven over pipes with the official workers' sentinel
/// protocol: each command runs as <c>{ CMD⏎} &lt;/dev/null 2&gt;&amp;1; printf '\n&lt;SENTINEL&gt;%d\n' $?</c> with a
/// per-call random sentinel (split by <c>''</c> so the literal never appears in what is written). Output is kept to
/// the last 100 KiB while it streams, so a flood cannot exhaust memory.
/// </summary>
internal sealed partial class BashSession : IDisposable
{
    public const int OutputLimit = 100 * 1024;
    private readonly Process _process;
    private readonly StringBuilder _buffer = new();
    private readonly Lock _gate = new();
    private bool _truncated;
    private string? _sentinel;
    private TaskCompletionSource? _sentinelSeen;
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public BashSession(string workdir, IReadOnlyDictionary<string, string> environment)
    {
        var psi = ToolProcess.StartInfo("/bin/bash", ["--noprofile", "--norc"], environment, workdir, redirectInput: true);
        psi.Environment["PS1"] = "";
        psi.Environment["PS2"] = "";
        psi.Environment["TERM"] = "dumb";
        _process = Process.Start(psi) ?? throw new ToolError("bash: could not start /bin/bash");
        // Before its first command: all it runs inherits the score, so an allocation past the limit kills a command, not the worker.
        Hosting.OomScore.PreferAsVictim(_process.Id);
        _process.StandardInput.AutoFlush = true;
        _ = PumpAsync(_process.StandardOutput);
        _ = PumpAsync(_process.StandardError);
        _ = WatchExitAsync();
    }

    public bool Closed { get; private set; }

    /// <summary>The shell's pid: the commands of a call run in it and its children.</summary>
    public int ProcessId => _process.Id;

    private async Task WatchExitAsync()
    {
        try
        {
            await _process.WaitForExitAsync();
        }
        catch (InvalidOperationException)
        {
        }

        // let the pumps drain what the shell printed before it died
        await Task.Delay(20);
        Closed = true;
        _exited.TrySetResult();
        lock (_gate)
        {
            _sentinelSeen?.TrySetResult();
        }
    }

    private async Task PumpAsync(StreamReader reader)
    {
        var chunk = new char[8192];
        try
        {
            int n;
            while ((n = await reader.ReadAsync(chunk.AsMemory())) > 0)
            {
                lock (_gate)
                {
                    var searchFrom = _buffer.Length;
                    _buffer.Append(chunk, 0, n);
                    if (_buffer.Length > OutputLimit)
                    {
                        searchFrom -= _buffer.Length - OutputLimit;
                        _buffer.Remove(0, _buffer.Length - OutputLimit);
                        _truncated = true;
                    }

                    if (_sentinel is not null && ContainsSince(Math.Max(0, searchFrom - _sentinel.Length), _sentinel))
                    {
                        _sentinelSeen?.TrySetResult();
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // the shell went away
        }
    }

    /// <summary>
    /// Looks for the sentinel only where this chunk could have completed it (its start overlapped by the sentinel's
    /// length), so a flood of output is not rescanned from the beginning on every chunk.
    /// </summary>
    private bool ContainsSince(int start, string value) =>
        _buffer.Length - start >= value.Length && _buffer.ToString(start, _buffer.Length - start).Contains(value, StringComparison.Ordinal);

    /// <summary>Runs one command; throws <see cref="TimeoutException"/>, <see cref="OperationCanceledException"/> or <see cref="BashTerminatedException"/>.</summary>
    public async Task<(string Output, int ExitCode)> ExecAsync(string command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Closed)
        {
            throw new BashTerminatedException();
        }

        cancellationToken.ThrowIfCancellationRequested();
        var sentinel = $"__ANT_CMD_{Guid.NewGuid()}_DONE__";
        var split = $"{sentinel[..8]}''{sentinel[8..]}";
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _buffer.Clear();
            _truncated = false;
            _sentinel = sentinel;
            _sentinelSeen = seen;
        }

        try
        {
            await _process.StandardInput.WriteAsync($"{{ {command}\n}} </dev/null 2>&1; printf '\\n{split}%d\\n' $?\n");
        }
        catch (IOException)
        {
            throw new BashTerminatedException();
        }

        try
        {
            await seen.Task.WaitAsync(timeout, cancellationToken);
        }
        finally
        {
            lock (_gate)
            {
                _sentinel = null;
                _sentinelSeen = null;
            }
        }

        string text;
        bool truncated;
        lock (_gate)
        {
            text = _buffer.ToString();
            truncated = _truncated;
        }

        var index = text.IndexOf(sentinel, StringComparison.Ordinal);
        if (index < 0)
        {
            throw new BashTerminatedException(); // the shell died before printing the sentinel
        }

        var code = ExitCodePattern().Match(text, index + sentinel.Length);
        var exitCode = code.Success ? int.Parse(code.Groups[1].Value, CultureInfo.InvariantCulture) : -1;
        var output = AnsiPattern().Replace(text[..index], "").TrimEnd('\n');
        return (truncated ? "[output truncated]\n" + output : output, exitCode);
    }

    [GeneratedRegex(@"\G(-?\d+)")]
    private static partial Regex ExitCodePattern();

    [GeneratedRegex("\x1b\\[[0-9;?]*[ -/]*[@-~]")]
    private static partial Regex AnsiPattern();

    public void Dispose()
    {
        Closed = true;
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or System.ComponentModel.Win32Exception)
        {
        }

        _process.Dispose();
    }
}

/// <summary>The shell exited (e.g. a top-level <c>exit</c>) before the command finished.</summary>
internal sealed class BashTerminatedException : Exception
{
    public BashTerminatedException() : base("bash session terminated") { }

    public BashTerminatedException(string message) : base(message) { }

    public BashTerminatedException(string message, Exception innerException) : base(message, innerException) { }
}
