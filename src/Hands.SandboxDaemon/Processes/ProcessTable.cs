using System.Collections.Concurrent;
using System.Globalization;

namespace Hands.SandboxDaemon.Processes;

/// <summary>Every process started through the API, addressable by PID or by the name it was started with.</summary>
internal sealed class ProcessTable
{
    /// <summary>Ended processes kept for their output and exit status; the oldest beyond this are forgotten.</summary>
    public const int RetainedEnded = 512;

    private readonly ConcurrentDictionary<int, SandboxProcess> _byPid = new();
    private long _nextHandle;

    public int RunningCount => _byPid.Values.Count(p => p.IsRunning);

    public int TotalCount => _byPid.Count;

    public IReadOnlyList<SandboxProcess> All => [.. _byPid.Values.OrderBy(p => p.Handle)];

    /// <summary>Starts a process; <see cref="ProcessLaunchException"/> when the request cannot be run.</summary>
    public SandboxProcess Start(StartRequest request, bool oneShot)
    {
        var launch = ProcessLauncher.Prepare(request, oneShot);
        var process = new SandboxProcess(Interlocked.Increment(ref _nextHandle), launch.StartInfo, request.Command!, request.Args ?? [],
            oneShot ? null : request.Name, stdinPipe: launch.StdinPipe, captureStdout: launch.CaptureStdout, captureStderr: launch.CaptureStderr);
        try
        {
            process.Start();
            if (!launch.ScoreRaised)
            {
                OomScore.RaiseAfterStart(process.Pid);
            }
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            process.Dispose();
            throw new ProcessLaunchException($"cannot start '{request.Command}': {ex.Message}", ex);
        }
        finally
        {
            ForgetEnvironment(launch, request);
        }

        _byPid[process.Pid] = process;
        Trim();
        return process;
    }

    /// <summary>
    /// A start request's environment often carries a credential (a worker's work secret): once the process has it, the
    /// daemon keeps no copy. The values are overwritten in place (they are the request's own strings, never shared)
    /// and the start info's table is emptied, so neither the process list nor a memory snapshot of the daemon holds them.
    /// </summary>
    private static void ForgetEnvironment(ProcessLauncher.Launch launch, StartRequest request)
    {
        foreach (var value in request.Env?.Values ?? Enumerable.Empty<string>())
        {
            System.Runtime.InteropServices.MemoryMarshal.AsMemory(value.AsMemory()).Span.Clear();
        }

        request.Env?.Clear();
        launch.StartInfo.Environment.Clear();
    }

    /// <summary>Finds a process by PID (an all-digit selector) or by name.</summary>
    public SandboxProcess? Find(string selector)
    {
        if (selector.Length > 0 && selector.All(char.IsAsciiDigit) && int.TryParse(selector, NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
        {
            return _byPid.GetValueOrDefault(pid);
        }

        return _byPid.Values.Where(p => p.Name == selector).OrderByDescending(p => p.Handle).FirstOrDefault();
    }

    private void Trim()
    {
        var ended = _byPid.Values.Where(p => !p.IsRunning).OrderBy(p => p.Handle).ToList();
        foreach (var old in ended.Take(Math.Max(0, ended.Count - RetainedEnded)))
        {
            if (_byPid.TryRemove(old.Pid, out var removed))
            {
                removed.Dispose();
            }
        }
    }
}

/// <summary>A process request that cannot be run: a bad field, or a command that does not exist.</summary>
internal sealed class ProcessLaunchException : Exception
{
    public ProcessLaunchException() { }

    public ProcessLaunchException(string message) : base(message) { }

    public ProcessLaunchException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>True when the fault is in the request (400) rather than in the spawn (500).</summary>
    public bool IsBadRequest { get; init; }
}
