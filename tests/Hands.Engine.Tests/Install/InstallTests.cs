using System.Diagnostics;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Engine.Api;
using Hands.Faults;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests.Install;

/// <summary>
/// From a fresh clone and from a built package to a server and back: the committed HEAD of this repository is cloned
/// into a temporary directory; its <c>scripts/install.sh</c> installs release v1 into a temporary prefix (state,
/// configuration and unit directories temporary too), <c>scripts/package.sh</c> builds v2 as a package, and the
/// package's own <c>install.sh</c> puts v2 beside v1 where no .NET SDK can be reached (a mount namespace hides it).
/// <c>systemd-analyze verify</c> accepts every unit written (engine, long-poll and webhook orchestrators); the engine
/// and an orchestrator run exactly as their units say (<see cref="UnitProcess"/>: ExecStart, environment, credentials
/// and KillMode, without systemd). A sandbox is hibernated (CRIU) on v1; a session's turn is held mid-tool-call while
/// v2 is activated from the package and both services restart on it; the turn completes in the same sandbox through
/// the same forwarder with each call run once; v3 (built from the clone) is activated too, and the sandboxed process
/// hibernated two upgrades ago wakes with its memory. The webhook unit serves; the uninstaller leaves no unit, binary,
/// mount, veth, cgroup or process, keeping the data until asked to remove it.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class InstallTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(180);

    private const string Scenario = """
        {"turns":[{"steps":[
          {"tool":"bash","input":{"command":"touch /tmp/turn-started; while [ ! -e /tmp/upgrade-done ]; do sleep 0.2; done; echo across-the-upgrade"}},
          {"tool":"bash","input":{"command":"echo after-the-upgrade"}},
          {"message":"done"}
        ]}]}
        """;

    /// <summary>A token only its memory holds, then a tick count, written each 0.1 s (bounded: about three hours).</summary>
    private const string Counter = "token=$RANDOM$RANDOM$RANDOM; for n in $(seq 1 100000); do echo \"$token $n\" > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 0.1; done";

    [Fact]
    public async Task Installs_from_a_clone_and_a_package_upgrades_twice_mid_turn_and_across_a_hibernation_and_uninstalls_without_leftovers()
    {
        var root = Path.Combine(Path.GetTempPath(), "hands-install-" + Guid.NewGuid().ToString("N")[..8]);
        var clone = Path.Combine(root, "clone");
        var prefix = Path.Combine(root, "opt");
        var state = Path.Combine(root, "state");
        var config = Path.Combine(root, "etc");
        var units = Path.Combine(root, "units");
        var engineData = Path.Combine(state, "engine");
        string[] locations = ["--prefix", prefix, "--state-dir", state, "--config-dir", config, "--unit-dir", units, "--bin-dir", "none"];
        Directory.CreateDirectory(root);
        await EnsureSystemdAnalyzeAsync();

        UnitProcess? engine = null, orchestrator = null, webhook = null;
        ControlPlaneServer? plane = null;
        var sandboxIds = new List<string>();
        try
        {
            // The issue's proof: a fresh clone of what is committed, not this work tree.
            var head = (await RunAsync("git", ["-C", RepositoryRoot(), "rev-parse", "HEAD"])).Output.Trim();
            await RunAsync("git", ["clone", "--quiet", "--no-checkout", RepositoryRoot(), clone]);
            await RunAsync("git", ["-C", clone, "checkout", "--quiet", head]);

            // CRIU as install.sh provisions it (lib/criu.sh downloads it; the test reaches no network but loopback, so it
            // is --no-prerequisites with the host's provisioned copy linked where the engine unit's --criu points).
            Assert.True(File.Exists("/opt/hands/criu/criu"), "CRIU is not provisioned in /opt/hands/criu (scripts/lib/criu.sh)");
            Directory.CreateDirectory(prefix);
            Directory.CreateSymbolicLink(Path.Combine(prefix, "criu"), "/opt/hands/criu");

            // v1 installed from the clone; v2 packaged from it; v3 built beside them (the slow parts, done up front).
            await RunAsync(Path.Combine(clone, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--version", "v1"]);
            var package = (await RunAsync(Path.Combine(clone, "scripts/package.sh"), ["--version", "v2", "--output", Path.Combine(root, "dist")])).Output.Split('\n').Single(line => line.EndsWith(".tar.gz", StringComparison.Ordinal));
            Assert.Equal(Path.Combine(root, "dist", "hands-v2-linux-x64.tar.gz"), package);
            await RunAsync(Path.Combine(clone, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--version", "v3", "--build-only"]);

            // The package on a server with no SDK: unpacked, its install.sh puts v2 beside v1 without building anything.
            var unpacked = Path.Combine(root, "unpacked");
            Directory.CreateDirectory(unpacked);
            await RunAsync("tar", ["-xzf", package, "-C", unpacked]);
            // As a user unpacks it before `sudo ./install.sh`: the files are that user's; the installed release must not be.
            await RunAsync("chown", ["-R", "nobody:nogroup", unpacked]);
            var packageInstall = Path.Combine(unpacked, "hands-v2-linux-x64", "install.sh");
            await RunWithoutDotnetAsync(packageInstall, [.. locations, "--no-prerequisites", "--build-only"]);
            var notRoots = (await RunAsync("find", [Path.Combine(prefix, "releases", "v2"), "(", "!", "-user", "root", "-o", "-perm", "/022", ")", "-print"])).Output.Trim();
            Assert.True(notRoots.Length == 0, "installed files a user other than root could write:\n" + notRoots);
            Assert.Contains("v2", (await RunWithoutDotnetAsync(Path.Combine(prefix, "releases/v2/hands"), ["--version"])).Output);

            var current = Path.Combine(prefix, "current");
            Assert.Equal("releases/v1", new FileInfo(current).LinkTarget);
            foreach (var version in new[] { "v1", "v2", "v3" })
            {
                foreach (var binary in new[] { "hands", "hands-worker", "hands-sandboxd", "hands-receiver", "uninstall.sh", "VERSION" })
                {
                    Assert.True(File.Exists(Path.Combine(prefix, "releases", version, binary)), $"{binary} is not in release {version}");
                }
            }

            // The dashboard of --dashboard, once per prefix, where the installed hands looks for it.
            Assert.True(File.Exists(Path.Combine(prefix, "dashboard", Hands.Cli.Dashboard.AspireDashboard.PackageVersion, "Aspire.Dashboard")), "the dashboard is not installed");
            Assert.Equal(Path.Combine(prefix, "dashboard", Hands.Cli.Dashboard.AspireDashboard.PackageVersion, "Aspire.Dashboard"),
                Hands.Cli.Dashboard.AspireDashboard.Locate(_ => null, Path.Combine(prefix, "releases/v1") + "/"));
            Assert.Contains("v1", (await RunAsync(Path.Combine(prefix, "bin/hands"), ["--version"])).Output);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(state));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(config));
            var engineUnit = Path.Combine(units, "hands-engine.service");
            var orchestratorTemplate = Path.Combine(units, "hands-orchestrator@.service");
            var webhookTemplate = Path.Combine(units, "hands-webhook@.service");
            await VerifyUnitAsync(engineUnit);
            Assert.Equal("process", UnitFile.Parse(engineUnit, null).Single("KillMode"));

            // The control plane stands in for Anthropic's API (the test's, on loopback); the engine forwards its port.
            var cpPort = EngineFixture.FreePort();
            var scenarios = Path.Combine(root, "scenarios");
            Directory.CreateDirectory(scenarios);
            await File.WriteAllTextAsync(Path.Combine(scenarios, "upgrade.json"), Scenario);
            plane = await ControlPlaneServer.StartAsync(new ControlPlaneOptions
            {
                Urls = $"http://127.0.0.1:{cpPort}",
                DataDirectory = Path.Combine(root, "control-plane"),
                ApiKey = TestControlPlane.ApiKey,
                ScenariosDirectory = scenarios,
            });
            using var app = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(TestControlPlane.ApiKey), new ManagedAgentsClientOptions { BaseUrl = plane.BaseAddress });
            var environment = await app.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "server", Config = TestControlPlane.Json("""{"type":"self_hosted"}""") });
            var environmentKey = (await app.Environments.CreateKeyAsync(environment.Id)).Key;
            var agent = await app.Agents.CreateAsync(new CreateAgentRequest
            {
                Name = "upgrade",
                Model = JsonSerializer.SerializeToElement("scripted:upgrade", ProtocolJsonContext.Default.String),
                Tools = [TestControlPlane.Json("""{"type":"agent_toolset_20260401"}""")],
            });

            // The operator's configuration, as the README says to write it: settings in files, the keys in root-only ones.
            var apiPort = EngineFixture.FreePort();
            var webhookPort = EngineFixture.FreePort();
            await File.WriteAllTextAsync(Path.Combine(config, "engine.env"),
                $"HANDS_ENGINE_ARGS=--urls http://127.0.0.1:{apiPort} --ingress http://127.0.0.1:{EngineFixture.FreePort()} --host-port {cpPort} --volume-mb 2048\n");
            await File.WriteAllTextAsync(Path.Combine(config, "orchestrator", environment.Id + ".env"),
                $"ANTHROPIC_BASE_URL=http://127.0.0.1:{cpPort}\nTENSORLAKE_API_URL=http://127.0.0.1:{apiPort}\nSANDBOX_IMAGE_NAME=host\nHANDS_WEBHOOK_URLS=http://127.0.0.1:{webhookPort}\n");
            var keyDirectory = Path.Combine(config, "credentials", environment.Id);
            Directory.CreateDirectory(keyDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var keyFile = WriteSecret(keyDirectory, "ANTHROPIC_ENVIRONMENT_KEY", environmentKey);
            var signingKey = "whsec_" + Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(24));
            WriteSecret(keyDirectory, "ANTHROPIC_WEBHOOK_SIGNING_KEY", signingKey);
            await VerifyUnitAsync(Path.Combine(units, $"hands-orchestrator@{environment.Id}.service"));
            await VerifyUnitAsync(Path.Combine(units, $"hands-webhook@{environment.Id}.service"));
            Assert.DoesNotContain(environmentKey, File.ReadAllText(orchestratorTemplate));
            Assert.DoesNotContain(signingKey, File.ReadAllText(webhookTemplate));

            engine = await UnitProcess.StartAsync(engineUnit, readyLine: "hands engine: API ");
            orchestrator = await UnitProcess.StartAsync(orchestratorTemplate, environment.Id);
            Assert.Equal(Path.Combine(prefix, "releases/v1/hands"), ExecutableOf(engine.Pid));
            Assert.DoesNotContain(environmentKey, File.ReadAllText($"/proc/{orchestrator.Pid}/cmdline"));
            Assert.DoesNotContain(environmentKey, File.ReadAllText($"/proc/{orchestrator.Pid}/environ"));
            var engineKey = EngineApiKeyFile.TryRead(engineData) ?? throw new InvalidOperationException("the engine made no key in " + engineData);
            using var sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri($"http://127.0.0.1:{apiPort}"), ApiKey = engineKey, MaxRetries = 0 });

            // A sandbox booted from v1, its counter running, hibernated by the v1 engine: CRIU's image needs v1's binaries.
            var sleeper = await sandboxes.CreateAsync(new CreateSandboxRequest { Name = "hibernated-" + Guid.NewGuid().ToString("N")[..8], Image = "host" });
            sandboxIds.Add(sleeper.CanonicalId);
            var counterPid = (await sandboxes.Proxy(sleeper).StartProcessAsync(new StartProcessRequest { Command = "bash", Args = ["-c", Counter], Name = "counter" })).Pid;
            await Eventually.TrueAsync(async () => await ReadCountAsync(sandboxes, sleeper.CanonicalId) is not null, "the counter's first tick", Bound);
            // Read before it sleeps: a read through the proxy would wake it.
            var (token, ticks) = (await ReadCountAsync(sandboxes, sleeper.CanonicalId))!.Value;
            Assert.True(await sandboxes.SuspendAsync(sleeper.CanonicalId, hibernate: true));
            var asleep = await sandboxes.GetAsync(sleeper.CanonicalId);
            Assert.Equal((SandboxStatus.Suspended, "hibernated"), (asleep.Status, asleep.SuspendTier));

            // A session's turn, held inside its first tool call.
            var session = await app.Sessions.CreateAsync(new CreateSessionRequest
            {
                Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
                EnvironmentId = environment.Id,
            });
            var sent = await app.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("go")]);
            var sandboxName = Hands.Orchestrator.SandboxNames.ForSession(session.Id);
            await Eventually.TrueAsync(async () => await ExistsAsync(sandboxes, sandboxName, "/tmp/turn-started"), "the first tool call to start in the session's sandbox:\n" + orchestrator.Output, Bound);
            var sandbox = await sandboxes.GetAsync(sandboxName);
            sandboxIds.Add(sandbox.CanonicalId);
            var forwarder = Assert.Single(HostLeaks.ForwarderProcesses(engineData));
            var workerPid = await WorkerPidAsync(sandboxes, sandboxName);

            // The first upgrade, from the package (no SDK): v2 becomes current; the services restart as systemctl
            // try-restart would (stop, start again).
            await RunWithoutDotnetAsync(packageInstall, [.. locations, "--no-prerequisites", "--activate", "v2"]);
            Assert.Equal("releases/v2", new FileInfo(current).LinkTarget);
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases/v1")), "the previous release was removed while a forwarder and a worker run from it");
            (engine, orchestrator) = await RestartAsync(engine, orchestrator, engineUnit, orchestratorTemplate, environment.Id);
            // KillMode=process: the engine alone stopped; its forwarder and the sandbox (the worker mid-call) lived on.
            Assert.Equal(Path.Combine(prefix, "releases/v2/hands"), ExecutableOf(engine.Pid));
            Assert.Contains("v2", (await RunAsync(Path.Combine(prefix, "bin/hands"), ["--version"])).Output);

            // The installed hands, with no SDK reachable, finds every engine prerequisite and the running engine.
            var doctor = await RunWithoutDotnetAsync(Path.Combine(prefix, "bin/hands"), ["doctor"], check: false,
                extra: new() { ["TENSORLAKE_API_URL"] = $"http://127.0.0.1:{apiPort}", ["HANDS_ENGINE_DATA"] = engineData });
            Assert.True(doctor.ExitCode == 0, "hands doctor failed:\n" + doctor.Output);
            foreach (var prerequisite in new[] { "runc", "tini", "iptables", "CRIU", "hands-sandboxd", "hands-worker" })
            {
                Assert.Contains("✓ " + prerequisite, doctor.Output, StringComparison.Ordinal);
            }

            // The new engine re-attached: same sandbox, running, the same worker process, the same forwarder adopted.
            var after = await sandboxes.GetAsync(sandboxName);
            Assert.Equal(sandbox.CanonicalId, after.CanonicalId);
            Assert.Equal(SandboxStatus.Running, after.Status);
            Assert.Equal(workerPid, await WorkerPidAsync(sandboxes, sandboxName));
            Assert.Equal(forwarder, Assert.Single(HostLeaks.ForwarderProcesses(engineData)));
            await sandboxes.Proxy(after).WriteFileAsync("/tmp/upgrade-done", "1"u8.ToArray());

            // The turn completes across the upgrade; each call ran once, in that sandbox.
            Assert.Equal("end_turn", await StopReasonAsync(app, session.Id, sent[^1].Id!));
            var results = await ToolResultsAsync(app, session.Id);
            Assert.Equal(2, results.Count);
            Assert.Contains("across-the-upgrade", results[0]);
            Assert.Contains("after-the-upgrade", results[1]);

            // The second upgrade, from the clone: v1 is neither current nor previous now, yet sandboxes were booted from it.
            var second = await RunAsync(Path.Combine(clone, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--activate", "v3"]);
            Assert.Contains($"keeping {prefix}/releases/v1", second.Output);
            (engine, orchestrator) = await RestartAsync(engine, orchestrator, engineUnit, orchestratorTemplate, environment.Id);
            Assert.Equal(Path.Combine(prefix, "releases/v3/hands"), ExecutableOf(engine.Pid));
            Assert.Equal("hibernated", (await sandboxes.GetAsync(sleeper.CanonicalId)).SuspendTier);

            // Woken through the v3 engine: its v1 daemon answers and the counter goes on with the token only its memory had.
            Assert.True(await sandboxes.ResumeAsync(sleeper.CanonicalId));
            Assert.Equal(SandboxStatus.Running, (await sandboxes.GetAsync(sleeper.CanonicalId)).Status);
            await Eventually.TrueAsync(async () => await ReadCountAsync(sandboxes, sleeper.CanonicalId) is { } now && now.Token == token && now.Ticks > ticks,
                "the woken counter to tick on with the token it had", Bound);
            var processes = await sandboxes.Proxy(await sandboxes.GetAsync(sleeper.CanonicalId)).ListProcessesAsync();
            Assert.Contains(processes, p => p.Pid == counterPid && p.Status == "running");

            // The webhook mode's unit, in the long-poll orchestrator's place (they share the environment's lock).
            await orchestrator.StopAsync();
            webhook = await UnitProcess.StartAsync(webhookTemplate, environment.Id, readyLine: "webhook receiver for environment");
            using (var http = new HttpClient())
            {
                var health = await http.GetAsync(new Uri($"http://127.0.0.1:{webhookPort}/healthz"));
                Assert.True(health.IsSuccessStatusCode, $"the webhook unit's /healthz answered {(int)health.StatusCode}:\n{webhook.Output}");
            }

            Assert.DoesNotContain(signingKey, File.ReadAllText($"/proc/{webhook.Pid}/environ"));
            Assert.DoesNotContain(signingKey, webhook.Output);

            // Uninstall as the README says: stop the units, then the uninstaller. Data kept; then --purge removes it.
            await webhook.StopAsync();
            await engine.StopAsync();
            var uninstall = await RunAsync(Path.Combine(prefix, "bin/hands-uninstall"), locations);
            Assert.Contains("sandbox(es) deleted", uninstall.Output);
            Assert.False(Directory.Exists(prefix), "the prefix is still there");
            Assert.False(File.Exists(engineUnit) || File.Exists(orchestratorTemplate) || File.Exists(webhookTemplate), "a unit file is still there");
            Assert.Empty(HostLeaks.Find(engineData, sandboxIds));
            Assert.True(File.Exists(Path.Combine(engineData, "engine.db")), "the engine's data was not kept");
            Assert.True(File.Exists(keyFile), "the credentials were not kept");
            Assert.DoesNotContain(environmentKey, uninstall.Output);
            await RunAsync(Path.Combine(clone, "scripts/uninstall.sh"), [.. locations, "--purge"]);
            Assert.False(Directory.Exists(state) || Directory.Exists(config), "--purge left the state or the configuration");
            Assert.Empty(HostLeaks.Find(engineData, sandboxIds));
        }
        finally
        {
            foreach (var process in new[] { webhook, orchestrator, engine })
            {
                if (process is not null)
                {
                    await process.DisposeAsync();
                }
            }

            if (plane is not null)
            {
                await plane.DisposeAsync();
            }

            HostLeaks.Remove(engineData, sandboxIds);
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>As <c>systemctl try-restart</c> of both units: stopped (orchestrator first), then started on <c>current</c>.</summary>
    private static async Task<(UnitProcess Engine, UnitProcess Orchestrator)> RestartAsync(UnitProcess engine, UnitProcess orchestrator, string engineUnit, string orchestratorTemplate, string environmentId)
    {
        await orchestrator.StopAsync();
        await engine.StopAsync();
        await engine.DisposeAsync();
        await orchestrator.DisposeAsync();
        return (await UnitProcess.StartAsync(engineUnit, readyLine: "hands engine: API "), await UnitProcess.StartAsync(orchestratorTemplate, environmentId));
    }

    private static string WriteSecret(string directory, string name, string value)
    {
        var file = Path.Combine(directory, name);
        File.WriteAllText(file, value + "\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        return file;
    }

    /// <summary>The counter's token and tick, or null before its first tick or while the sandbox does not answer.</summary>
    private static async Task<(string Token, int Ticks)?> ReadCountAsync(TensorlakeClient client, string id)
    {
        try
        {
            var sandbox = await client.GetAsync(id);
            var words = System.Text.Encoding.UTF8.GetString(await client.Proxy(sandbox).ReadFileAsync("/tmp/count")).Split(' ', StringSplitOptions.TrimEntries);
            return words.Length == 2 && int.TryParse(words[1], out var ticks) ? (words[0], ticks) : null;
        }
        catch (TensorlakeException)
        {
            return null;
        }
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Hands.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException("not run from a clone of Hands");
    }

    /// <summary>The systemd package holds systemd-analyze; installed when missing (non-interactive, idempotent).</summary>
    private static async Task EnsureSystemdAnalyzeAsync()
    {
        if ((await RunAsync("/bin/sh", ["-c", "command -v systemd-analyze"], check: false)).ExitCode == 0)
        {
            return;
        }

        await RunAsync("/bin/sh", ["-c", "DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd"]);
    }

    /// <summary><c>systemd-analyze verify</c> must accept it with nothing to say (an unknown key is only a warning there).</summary>
    private static async Task VerifyUnitAsync(string unit)
    {
        var verify = await RunAsync("systemd-analyze", ["verify", unit], check: false);
        Assert.True(verify.ExitCode == 0 && verify.Output.Trim().Length == 0, $"systemd-analyze verify {unit}: exit {verify.ExitCode}\n{verify.Output}");
    }

    private static string ExecutableOf(int pid) => new FileInfo($"/proc/{pid}/exe").ResolveLinkTarget(returnFinalTarget: false)!.FullName;

    private static async Task<bool> ExistsAsync(TensorlakeClient client, string name, string path)
    {
        try
        {
            var sandbox = await client.GetAsync(name);
            if (sandbox.Status != SandboxStatus.Running)
            {
                return false;
            }

            await client.Proxy(sandbox).ReadFileAsync(path);
            return true;
        }
        catch (TensorlakeException)
        {
            return false;
        }
    }

    private static async Task<string> WorkerPidAsync(TensorlakeClient client, string name)
    {
        var processes = await client.Proxy(await client.GetAsync(name)).ListProcessesAsync();
        return Assert.Single(processes, p => p.Status == "running" && (p.Command?.Contains("hands-worker", StringComparison.Ordinal) ?? false)).Pid.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    private static async Task<string> StopReasonAsync(ManagedAgentsClient app, string sessionId, string after)
    {
        using var cts = new CancellationTokenSource(Bound);
        await foreach (var e in app.Events.StreamAsync(sessionId, after, cts.Token))
        {
            if (e.Type == EventTypes.StatusIdle && e.StopReason?.Type is { } reason && reason != "requires_action")
            {
                return reason;
            }
        }

        throw new TimeoutException("the session stream ended before the turn did");
    }

    private static async Task<List<string>> ToolResultsAsync(ManagedAgentsClient app, string sessionId)
    {
        var results = new List<string>();
        await foreach (var e in app.Events.ListAllAsync(sessionId))
        {
            if (e.Type == EventTypes.UserToolResult)
            {
                results.Add(e.Text);
            }
        }

        return results;
    }

    /// <summary>
    /// Runs it where no .NET SDK can be reached, as on a server that never had one: in a mount namespace of its own the
    /// SDK's directory (where <c>dotnet</c> on PATH leads) is covered by an empty one, and the environment is only
    /// PATH, HOME, LANG and <paramref name="extra"/>. Refuses to run it if <c>dotnet</c> still answers.
    /// </summary>
    private static async Task<(int ExitCode, string Output)> RunWithoutDotnetAsync(string file, IEnumerable<string> args, bool check = true, Dictionary<string, string>? extra = null)
    {
        var empty = Directory.CreateTempSubdirectory("hands-no-sdk-");
        try
        {
            var environment = new Dictionary<string, string>(extra ?? [], StringComparer.Ordinal)
            {
                ["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ["HOME"] = "/root",
                ["LANG"] = "C.UTF-8",
            };
            const string HideSdk = """
                sdk=$(dirname "$(readlink -f "$(command -v dotnet)")") && mount --bind "$0" "$sdk" || exit 97
                if dotnet --info >/dev/null 2>&1; then echo "dotnet still answers" >&2; exit 98; fi
                exec "$@"
                """;
            return await RunAsync("unshare", ["--mount", "--propagation", "private", "/bin/sh", "-c", HideSdk, empty.FullName, file, .. args], check, environment);
        }
        finally
        {
            empty.Delete();
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, bool check = true, Dictionary<string, string>? environment = null)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
        }

        if (environment is not null)
        {
            psi.Environment.Clear();
            foreach (var (name, value) in environment)
            {
                psi.Environment[name] = value;
            }
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(20));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout + await stderr;
        if (check && process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', psi.ArgumentList)}: exit {process.ExitCode}\n{output}");
        }

        return (process.ExitCode, output);
    }
}
