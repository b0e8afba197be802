using System.Diagnostics;
using System.Text;

namespace Hands.Engine.Tests.Install;

/// <summary>
/// Runs a systemd unit file's service the way systemd would, without systemd (CI has none running): its
/// <c>ExecStart=</c> with <c>%i</c> and <c>$VAR</c>/<c>${VAR}</c> expanded, an environment made only of systemd's
/// <c>PATH</c>, <c>Environment=</c> and <c>EnvironmentFile=</c>, its <c>WorkingDirectory=</c>, <c>UMask=</c> and its
/// <c>LoadCredential=</c> files copied into a private <c>$CREDENTIALS_DIRECTORY</c> (0500, files 0400). Stopping follows
/// its <c>KillMode=</c>: <c>process</c> signals the main process alone, as <c>systemctl stop</c> does; anything else
/// also kills what the main process started. Killed (tree) on dispose if still running.
/// </summary>
internal sealed class UnitProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly List<Task> _pumps = [];
    private readonly string? _credentials;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _readyLine;

    private UnitProcess(Process process, string? credentials, string? readyLine, UnitFile unit)
    {
        _process = process;
        _credentials = credentials;
        _readyLine = readyLine;
        Unit = unit;
    }

    public UnitFile Unit { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

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

    /// <summary>Starts the service of <paramref name="unitPath"/> (instance <paramref name="instance"/> of a template); waits for <paramref name="readyLine"/> when given.</summary>
    public static async Task<UnitProcess> StartAsync(string unitPath, string? instance = null, string? readyLine = null)
    {
        var unit = UnitFile.Parse(unitPath, instance);
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            // What systemd gives every system service (systemd.exec(5), "Environment variables in spawned processes").
            ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["LANG"] = "C.UTF-8",
        };
        foreach (var assignment in unit.All("Environment"))
        {
            foreach (var word in assignment.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = word.IndexOf('=', StringComparison.Ordinal);
                environment[word[..eq]] = word[(eq + 1)..];
            }
        }

        foreach (var file in unit.All("EnvironmentFile"))
        {
            var optional = file.StartsWith('-');
            var path = optional ? file[1..] : file;
            if (!File.Exists(path))
            {
                Assert.True(optional, $"{unitPath}: EnvironmentFile {path} is missing (systemd would refuse to start the unit)");
                continue;
            }

            foreach (var line in File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')))
            {
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                environment[line[..eq].Trim()] = line[(eq + 1)..].Trim().Trim('"');
            }
        }

        string? credentials = null;
        if (unit.All("LoadCredential").ToList() is { Count: > 0 } loads)
        {
            credentials = Path.Combine(Path.GetTempPath(), "hands-credentials-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(credentials, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            foreach (var load in loads)
            {
                var colon = load.IndexOf(':', StringComparison.Ordinal);
                var target = Path.Combine(credentials, load[..colon]);
                File.Copy(load[(colon + 1)..], target);
                File.SetUnixFileMode(target, UnixFileMode.UserRead);
            }

            File.SetUnixFileMode(credentials, UnixFileMode.UserRead | UnixFileMode.UserExecute);
            environment["CREDENTIALS_DIRECTORY"] = credentials;
        }

        var argv = Expand(unit.Single("ExecStart"), environment);
        // UMask= and WorkingDirectory= as systemd applies them before exec.
        var umask = unit.Optional("UMask") ?? "0022";
        var psi = new ProcessStartInfo("/bin/bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = unit.Optional("WorkingDirectory") ?? "/",
        };
        psi.ArgumentList.Add("-c");
        // systemd starts a service with stdin, stdout and stderr only: every other descriptor this test process holds
        // (the build lock, the test runner's pipes) is closed, so nothing the service starts can keep one open.
        psi.ArgumentList.Add($"for fd in $(ls /proc/$$/fd); do if [ \"$fd\" -gt 2 ] && [ -e /proc/$$/fd/$fd ]; then eval \"exec $fd>&-\"; fi; done; umask {umask}; exec \"$@\"");
        psi.ArgumentList.Add("unit");
        foreach (var arg in argv)
        {
            psi.ArgumentList.Add(arg);
        }

        psi.Environment.Clear();
        foreach (var (name, value) in environment)
        {
            psi.Environment[name] = value;
        }

        var started = new UnitProcess(Process.Start(psi)!, credentials, readyLine, unit);
        started._pumps.Add(started.Pump(started._process.StandardOutput));
        started._pumps.Add(started.Pump(started._process.StandardError));
        if (readyLine is not null)
        {
            var finished = await Task.WhenAny(started._ready.Task, started._process.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(120)));
            if (finished != started._ready.Task)
            {
                var output = started.Output;
                await started.DisposeAsync();
                throw new InvalidOperationException($"{Path.GetFileName(unitPath)} did not print '{readyLine}':\n{output}");
            }
        }

        return started;
    }

    /// <summary><c>systemctl stop</c>: SIGTERM to the main process, then as <c>KillMode=</c> says; waits for the main process.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }

        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await _process.WaitForExitAsync(timeout.Token);
        // Its output ends with it: a process it left behind (KillMode=process) must not hold the unit's stdout or stderr.
        await Task.WhenAll(_pumps).WaitAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>The argv of <c>ExecStart=</c>: <c>$VAR</c> alone splits into words, <c>${VAR}</c> is one word (systemd.service(5)).</summary>
    private static List<string> Expand(string line, Dictionary<string, string> environment)
    {
        var argv = new List<string>();
        foreach (var word in line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            if (word.StartsWith('$') && !word.StartsWith("${", StringComparison.Ordinal))
            {
                argv.AddRange((environment.GetValueOrDefault(word[1..]) ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries));
            }
            else if (word.StartsWith("${", StringComparison.Ordinal) && word.EndsWith('}'))
            {
                argv.Add(environment.GetValueOrDefault(word[2..^1]) ?? "");
            }
            else
            {
                argv.Add(word);
            }
        }

        return argv;
    }

    private Task Pump(StreamReader reader) => Task.Run(async () =>
    {
        while (await reader.ReadLineAsync() is { } line)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }

            if (_readyLine is not null && line.Contains(_readyLine, StringComparison.Ordinal))
            {
                _ready.TrySetResult();
            }
        }
    });

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // Only the main process: what the unit's KillMode=process leaves (the forwarder) is the test's to check.
            _process.Kill(entireProcessTree: false);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        if (_credentials is not null && Directory.Exists(_credentials))
        {
            File.SetUnixFileMode(_credentials, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Directory.Delete(_credentials, recursive: true);
        }
    }
}

/// <summary>The [Service] settings of a unit file (one value per line, repeatable keys kept in order), <c>%i</c> substituted.</summary>
internal sealed class UnitFile
{
    private readonly List<(string Section, string Key, string Value)> _entries = [];

    public static UnitFile Parse(string path, string? instance)
    {
        var unit = new UnitFile();
        var section = "";
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#') || line.StartsWith(';'))
            {
                continue;
            }

            if (line.StartsWith('['))
            {
                section = line.Trim('[', ']');
                continue;
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            var value = line[(eq + 1)..].Trim();
            if (instance is not null)
            {
                value = value.Replace("%i", instance, StringComparison.Ordinal);
            }

            Assert.DoesNotContain("%", value);
            unit._entries.Add((section, line[..eq].Trim(), value));
        }

        return unit;
    }

    public IEnumerable<string> All(string key) => _entries.Where(e => e.Section == "Service" && e.Key == key).Select(e => e.Value);

    public string Single(string key) => Assert.Single(All(key));

    public string? Optional(string key) => All(key).LastOrDefault();
}
