using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Hands.Faults;

/// <summary>
/// One process of the stack, <c>dotnet hands.dll VERB ...</c> (the control plane, the engine or the orchestrator), that
/// can be killed with SIGKILL and started again with the same arguments, ports and data. Its output goes to a log file
/// (appended across restarts) and a bounded in-memory tail; it counts as started once it printed its ready line.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class StackProcess : IAsyncDisposable
{
    private const int KeptLines = 20_000;
    private static readonly TimeSpan ReadyWithin = TimeSpan.FromSeconds(90);
    private readonly string _handsDll;
    private readonly IReadOnlyList<string> _arguments;
    private readonly IReadOnlyDictionary<string, string> _environment;
    private readonly string _workingDirectory;
    private readonly string _readyLine;
    private readonly string _logFile;
    private readonly Queue<string> _lines = new();
    private Process? _process;

    /// <param name="name">A short name for logs and reports (<c>control-plane</c>, <c>engine</c>, <c>orchestrator</c>).</param>
    /// <param name="handsDll">The <c>hands</c> CLI assembly run with <c>dotnet</c>.</param>
    /// <param name="arguments">The verb and its options.</param>
    /// <param name="environment">Variables set for it; the parent's <c>ANTHROPIC_*</c>, <c>TENSORLAKE_*</c> and <c>HANDS_*</c> are not passed on.</param>
    /// <param name="workingDirectory">Its current directory (the run's own: <c>hands</c> reads <c>.env</c> files from there).</param>
    /// <param name="readyLine">Text in the line it prints once it serves.</param>
    /// <param name="logFile">Where its output is appended.</param>
    public StackProcess(string name, string handsDll, IReadOnlyList<string> arguments, IReadOnlyDictionary<string, string> environment,
        string workingDirectory, string readyLine, string logFile)
    {
        Name = name;
        _handsDll = handsDll;
        _arguments = arguments;
        _environment = environment;
        _workingDirectory = workingDirectory;
        _readyLine = readyLine;
        _logFile = logFile;
    }

    /// <summary>Its short name.</summary>
    public string Name { get; }

    /// <summary>How many times it was started.</summary>
    public int Starts { get; private set; }

    /// <summary>How many times it was killed with SIGKILL.</summary>
    public int Kills { get; private set; }

    /// <summary>Its pid while it runs.</summary>
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>Starts it and waits (90 s at most) for its ready line; throws with its output if it exits or stays silent.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (Pid is not null)
        {
            throw new InvalidOperationException($"{Name} is already running (pid {Pid})");
        }

        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = _workingDirectory,
        };
        psi.ArgumentList.Add(_handsDll);
        foreach (var argument in _arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        // Only what this run sets: a key or URL exported in the shell that started the run must not reach the stack.
        foreach (var inherited in psi.Environment.Keys.Where(k => k.StartsWith("ANTHROPIC_", StringComparison.Ordinal)
            || k.StartsWith("TENSORLAKE_", StringComparison.Ordinal) || k.StartsWith("HANDS_", StringComparison.Ordinal)).ToList())
        {
            psi.Environment.Remove(inherited);
        }

        foreach (var (key, value) in _environment)
        {
            psi.Environment[key] = value;
        }

        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Starts++;
        Append($"=== {Name}: start {Starts} at {DateTimeOffset.UtcNow:HH:mm:ss.fff} ===");
        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        void OnLine(object? sender, DataReceivedEventArgs e)
        {
            if (e.Data is not { } line)
            {
                return;
            }

            Append(line);
            if (line.Contains(_readyLine, StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        }

        process.OutputDataReceived += OnLine;
        process.ErrorDataReceived += OnLine;
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(ReadyWithin);
        var finished = await Task.WhenAny(ready.Task, process.WaitForExitAsync(timeout.Token)).ConfigureAwait(false);
        if (finished != ready.Task || !ready.Task.IsCompletedSuccessfully)
        {
            var why = process.HasExited ? $"exited with {process.ExitCode}" : "did not print its ready line within 90 s";
            await KillQuietlyAsync().ConfigureAwait(false);
            throw new InvalidOperationException($"{Name} {why}:\n{Tail(40)}");
        }
    }

    /// <summary>SIGKILL, as the OOM killer or a power cut would (the process alone: children it started live on); waits for it to die.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            throw new InvalidOperationException($"{Name} is not running");
        }

        Kills++;
        Append($"=== {Name}: SIGKILL at {DateTimeOffset.UtcNow:HH:mm:ss.fff} ===");
        _ = Kill(process.Id, 9);
        await WaitForExitAsync(process, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
    }

    /// <summary>SIGTERM (its graceful stop), then SIGKILL after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (_process is not { HasExited: false } process)
        {
            return;
        }

        _ = Kill(process.Id, 15);
        if (!await WaitForExitAsync(process, grace).ConfigureAwait(false))
        {
            Append($"=== {Name}: did not stop within {grace.TotalSeconds:0} s of SIGTERM; SIGKILL ===");
            await KillQuietlyAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Resident memory in bytes while it runs (VmRSS), else 0.</summary>
    public long ResidentBytes() => Pid is { } pid ? ResidentBytesOf(pid) : 0;

    /// <summary>Resident memory of any process (VmRSS), 0 when it is gone.</summary>
    public static long ResidentBytesOf(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    /// <summary>Its last <paramref name="count"/> lines.</summary>
    public string Tail(int count)
    {
        lock (_lines)
        {
            return string.Join('\n', _lines.TakeLast(count));
        }
    }

    /// <summary>The lines kept (the last 20,000) that satisfy <paramref name="match"/>.</summary>
    public IReadOnlyList<string> Lines(Func<string, bool> match)
    {
        lock (_lines)
        {
            return [.. _lines.Where(match)];
        }
    }

    public async ValueTask DisposeAsync()
    {
        await KillQuietlyAsync().ConfigureAwait(false);
        _process?.Dispose();
    }

    private async Task KillQuietlyAsync()
    {
        if (_process is { HasExited: false } process)
        {
            _ = Kill(process.Id, 9);
            await WaitForExitAsync(process, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        }
    }

    private static async Task<bool> WaitForExitAsync(Process process, TimeSpan within)
    {
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void Append(string line)
    {
        lock (_lines)
        {
            _lines.Enqueue(line);
            while (_lines.Count > KeptLines)
            {
                _lines.Dequeue();
            }

            File.AppendAllText(_logFile, line + "\n");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
