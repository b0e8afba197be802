using System.Diagnostics;
using System.Text;

namespace Hands.Worker.Tests;

/// <summary>A real <c>hands-worker</c> process (the JIT build beside the tests), killed on dispose if still running.</summary>
public sealed class WorkerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Task _pump;
    private readonly List<(string Text, TaskCompletionSource Seen)> _waiters = [];

    private readonly DirectoryInfo? _ownStateDirectory;

    private WorkerProcess(Process process, DirectoryInfo? ownStateDirectory)
    {
        _process = process;
        _ownStateDirectory = ownStateDirectory;
        _pump = Task.Run(async () =>
        {
            string? line;
            while ((line = await process.StandardError.ReadLineAsync()) is not null)
            {
                lock (_stderr)
                {
                    _stderr.AppendLine(line);
                    foreach (var waiter in _waiters.Where(w => line.Contains(w.Text, StringComparison.Ordinal)).ToList())
                    {
                        _waiters.Remove(waiter);
                        waiter.Seen.TrySetResult();
                    }
                }
            }
        });
        _ = process.StandardOutput.ReadToEndAsync();
    }

    public string Log
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>
    /// Waits until the worker logs a line containing <paramref name="text"/> (or has logged one already): tests wait on
    /// what the worker did, not on time. Throws with the log when it exits or <paramref name="timeout"/> passes first.
    /// </summary>
    public async Task WaitForLogAsync(string text, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_stderr)
        {
            if (_stderr.ToString().Contains(text, StringComparison.Ordinal))
            {
                return;
            }

            _waiters.Add((text, seen));
        }

        var finished = await Task.WhenAny(seen.Task, _process.WaitForExitAsync(), Task.Delay(timeout));
        if (finished != seen.Task)
        {
            throw new TimeoutException($"hands-worker did not log '{text}' ({(HasExited ? "it exited" : $"within {timeout.TotalSeconds:0} s")}). Its log:\n{Log}");
        }
    }

    public int Id => _process.Id;
    public bool HasExited => _process.HasExited;

    /// <summary>
    /// The JIT build of hands-worker in its own project's output: a copy beside these tests would miss the packages that
    /// the test project takes from the ASP.NET Core shared framework (Microsoft.Extensions.*, which the OpenTelemetry
    /// SDK needs), and the worker runs on Microsoft.NETCore.App alone.
    /// </summary>
    public static string JitWorker { get; } = FindJitWorker();

    private static string FindJitWorker()
    {
        var here = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)); // .../bin/<configuration>/<tfm>
        var (tfm, configuration) = (here.Name, here.Parent!.Name);
        for (var dir = here; dir is not null; dir = dir.Parent)
        {
            var own = Path.Combine(dir.FullName, "src", "Hands.Worker", "bin", configuration, tfm, "hands-worker.dll");
            if (File.Exists(Path.Combine(dir.FullName, "Hands.slnx")) && File.Exists(own))
            {
                return own;
            }
        }

        return Path.Combine(AppContext.BaseDirectory, "hands-worker.dll");
    }

    public static WorkerProcess Start(Dictionary<string, string> env, string workdir, params string[] args)
    {
        // scripts/test.sh publishes the NativeAOT binary and points HANDS_WORKER_BINARY at it, so these tests run the
        // artifact that ships; without it they run the JIT build beside the tests.
        var binary = Environment.GetEnvironmentVariable("HANDS_WORKER_BINARY");
        var aot = !string.IsNullOrEmpty(binary);
        if (aot && !File.Exists(binary))
        {
            throw new FileNotFoundException($"HANDS_WORKER_BINARY={binary} does not exist");
        }

        var psi = new ProcessStartInfo(aot ? binary! : "dotnet")
        {
            WorkingDirectory = workdir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (!aot)
        {
            psi.ArgumentList.Add(JitWorker);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("ANTHROPIC_", StringComparison.OrdinalIgnoreCase)).ToList())
        {
            psi.Environment.Remove(key);
        }

        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        // Each worker keeps its journal in a directory of its own unless the test shares one (a replacement worker).
        var ownState = env.ContainsKey("HANDS_WORKER_STATE_DIR") ? null : Directory.CreateTempSubdirectory("hands-worker-state-");
        if (ownState is not null)
        {
            psi.Environment["HANDS_WORKER_STATE_DIR"] = ownState.FullName;
        }

        return new WorkerProcess(Process.Start(psi)!, ownState);
    }

    public async Task<int> WaitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("hands-worker did not exit in time. Its log:\n" + Log);
        }

        await _pump;
        return _process.ExitCode;
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGKILL to the worker alone, as an OOM kill or a crash would: its bash and what bash runs live on.</summary>
    public void KillWorkerOnly() => _process.Kill(entireProcessTree: false);

    /// <summary>SIGTERM, as an orchestrator or container runtime would send.</summary>
    public void Terminate()
    {
        using var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        _ownStateDirectory?.Delete(recursive: true);
    }
}
