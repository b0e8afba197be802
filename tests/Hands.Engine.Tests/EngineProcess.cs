using System.Diagnostics;
using System.Text;

namespace Hands.Engine.Tests;

/// <summary>
/// <c>hands engine</c> as a process of its own (the test process must survive the engine's death), optionally armed to
/// SIGKILL itself at a named crash point (<c>HANDS_ENGINE_CRASH_AT</c>). Killed on dispose if still running.
/// </summary>
internal sealed class EngineProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<Task> _pumps = [];

    private EngineProcess(Process process, Uri apiAddress)
    {
        _process = process;
        ApiAddress = apiAddress;
    }

    public Uri ApiAddress { get; }

    /// <summary>The engine's pid (the <c>dotnet</c> process running <c>hands engine</c>).</summary>
    public int Pid => _process.Id;

    /// <summary>What it printed (stdout and stderr), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// Starts it on <paramref name="dataDirectory"/> and waits until it serves. With <paramref name="inheritedFile"/>, the
    /// engine starts holding that file open on descriptor 7, not close-on-exec, as a lock or socket of whatever started it
    /// would be (<c>flock FILE hands engine</c>): a shell opens it and execs the engine, so the engine keeps its pid.
    /// </summary>
    public static async Task<EngineProcess> StartAsync(string dataDirectory, string? crashAt, IReadOnlyList<int>? hostPorts = null, string? inheritedFile = null)
    {
        var (engine, ready) = Launch(dataDirectory, crashAt, hostPorts, inheritedFile);
        var finished = await Task.WhenAny(ready, engine._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(120)));
        if (finished != ready)
        {
            await engine.DisposeAsync();
            throw new InvalidOperationException("hands engine did not start serving:\n" + engine.Output);
        }

        return engine;
    }

    /// <summary>Starts it on <paramref name="dataDirectory"/> expecting it to refuse to start: answers its exit code and output.</summary>
    public static async Task<(int ExitCode, string Output)> StartRefusedAsync(string dataDirectory)
    {
        var (engine, ready) = Launch(dataDirectory, crashAt: null);
        await using (engine)
        {
            var exited = engine._process.WaitForExitAsync();
            var finished = await Task.WhenAny(ready, exited, Task.Delay(TimeSpan.FromSeconds(120)));
            if (finished != exited)
            {
                throw new InvalidOperationException((finished == ready ? "hands engine started serving" : "hands engine neither served nor exited") + " where it should have refused:\n" + engine.Output);
            }

            // Exited: the pumps end at the pipes' EOF, so its last words are in once they have.
            await Task.WhenAll(engine._pumps);
            return (engine._process.ExitCode, engine.Output);
        }
    }

    private static (EngineProcess Engine, Task Ready) Launch(string dataDirectory, string? crashAt, IReadOnlyList<int>? hostPorts = null, string? inheritedFile = null)
    {
        var api = new Uri($"http://127.0.0.1:{EngineFixture.FreePort()}");
        var options = EngineFixture.Options(dataDirectory);
        var psi = new ProcessStartInfo(inheritedFile is null ? "dotnet" : "/bin/sh")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (inheritedFile is not null)
        {
            foreach (var argument in new[] { "-c", "exec 7>>\"$0\" && exec \"$@\"", inheritedFile, "dotnet" })
            {
                psi.ArgumentList.Add(argument);
            }
        }

        foreach (var argument in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "hands.dll"), "engine", "--data", dataDirectory, "--urls", api.ToString(),
            "--ingress", $"http://127.0.0.1:{EngineFixture.FreePort()}", "--volume-mb", options.VolumeMb!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--sandboxd", options.SandboxDaemonBinary!,
        })
        {
            psi.ArgumentList.Add(argument);
        }

        foreach (var port in hostPorts ?? [])
        {
            psi.ArgumentList.Add("--host-port");
            psi.ArgumentList.Add(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        psi.Environment["HANDS_ENGINE_API_KEY"] = EngineFixture.ApiKey;
        if (crashAt is not null)
        {
            psi.Environment["HANDS_ENGINE_CRASH_AT"] = crashAt;
        }

        var engine = new EngineProcess(Process.Start(psi)!, api);
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        engine._pumps.Add(engine.Pump(engine._process.StandardOutput, ready));
        engine._pumps.Add(engine.Pump(engine._process.StandardError, ready));
        return (engine, ready.Task);
    }

    /// <summary>SIGKILL to the engine alone, as the OOM killer or kill -9 would (its sandboxes and its host-port forwarder live on).</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
    }

    /// <summary>Waits for it to die (an armed crash point) and answers its exit code.</summary>
    public async Task<int> WaitForDeathAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("hands engine did not die at its crash point:\n" + Output);
        }

        return _process.ExitCode;
    }

    /// <summary>SIGTERM (what systemd and Ctrl-C ask): the engine shuts down in order; waits until it has.</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await _process.WaitForExitAsync(timeout.Token);
    }

    private Task Pump(StreamReader reader, TaskCompletionSource ready) => Task.Run(async () =>
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }

            if (line.StartsWith("hands engine: API ", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        }
    });

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }
}
