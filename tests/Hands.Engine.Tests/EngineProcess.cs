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

    private EngineProcess(Process process, Uri apiAddress)
    {
        _process = process;
        ApiAddress = apiAddress;
    }

    public Uri ApiAddress { get; }

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

    /// <summary>Starts it on <paramref name="dataDirectory"/> and waits until it serves.</summary>
    public static async Task<EngineProcess> StartAsync(string dataDirectory, string? crashAt, IReadOnlyList<int>? hostPorts = null)
    {
        var api = new Uri($"http://127.0.0.1:{EngineFixture.FreePort()}");
        var options = EngineFixture.Options(dataDirectory);
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
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
        engine.Pump(engine._process.StandardOutput, ready);
        engine.Pump(engine._process.StandardError, ready);
        var finished = await Task.WhenAny(ready.Task, engine._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(120)));
        if (finished != ready.Task)
        {
            await engine.DisposeAsync();
            throw new InvalidOperationException("hands engine did not start serving:\n" + engine.Output);
        }

        return engine;
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

    /// <summary>SIGKILL to the engine alone (not to the forwarder it started), and waits for its death.</summary>
    public async Task KillAsync()
    {
        _process.Kill(entireProcessTree: false);
        await _process.WaitForExitAsync();
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

    private void Pump(StreamReader reader, TaskCompletionSource ready) => _ = Task.Run(async () =>
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
