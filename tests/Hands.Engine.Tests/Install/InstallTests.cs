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
/// From a clone to a server and back: <c>scripts/install.sh</c> installs a release into a temporary prefix (state,
/// configuration and unit directories temporary too), <c>systemd-analyze verify</c> accepts the units it writes, the
/// engine and an orchestrator run exactly as those units say (<see cref="UnitProcess"/>: their ExecStart, environment,
/// credentials and KillMode, without systemd), a session's turn is held mid-tool-call while a rebuilt release is
/// activated and both services restart on it, the turn completes in the same sandbox through the same forwarder with
/// each call run once, and the uninstaller leaves no unit, binary, mount, veth, cgroup or process, keeping the data
/// until asked to remove it.
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

    [Fact]
    public async Task Installs_runs_as_its_units_upgrades_mid_turn_and_uninstalls_without_leftovers()
    {
        var repo = RepositoryRoot();
        var root = Path.Combine(Path.GetTempPath(), "hands-install-" + Guid.NewGuid().ToString("N")[..8]);
        var prefix = Path.Combine(root, "opt");
        var state = Path.Combine(root, "state");
        var config = Path.Combine(root, "etc");
        var units = Path.Combine(root, "units");
        var engineData = Path.Combine(state, "engine");
        string[] locations = ["--prefix", prefix, "--state-dir", state, "--config-dir", config, "--unit-dir", units, "--bin-dir", "none"];
        Directory.CreateDirectory(root);
        await EnsureSystemdAnalyzeAsync();

        UnitProcess? engine = null, orchestrator = null;
        ControlPlaneServer? plane = null;
        var sandboxIds = new List<string>();
        try
        {
            // Install v1, and build v2 beside it now (the slow part of an upgrade), to activate it mid-turn.
            await RunAsync(Path.Combine(repo, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--version", "v1"]);
            await RunAsync(Path.Combine(repo, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--version", "v2", "--build-only"]);
            var current = Path.Combine(prefix, "current");
            Assert.Equal("releases/v1", new FileInfo(current).LinkTarget);
            foreach (var binary in new[] { "hands", "hands-worker", "hands-sandboxd", "uninstall.sh" })
            {
                Assert.True(File.Exists(Path.Combine(prefix, "releases/v1", binary)), $"{binary} is not in the release");
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

            // The operator's configuration, as the README says to write it: settings in files, the key in a root-only one.
            var apiPort = EngineFixture.FreePort();
            await File.WriteAllTextAsync(Path.Combine(config, "engine.env"),
                $"HANDS_ENGINE_ARGS=--urls http://127.0.0.1:{apiPort} --ingress http://127.0.0.1:{EngineFixture.FreePort()} --host-port {cpPort} --volume-mb 2048\n");
            await File.WriteAllTextAsync(Path.Combine(config, "orchestrator", environment.Id + ".env"),
                $"ANTHROPIC_BASE_URL=http://127.0.0.1:{cpPort}\nTENSORLAKE_API_URL=http://127.0.0.1:{apiPort}\nSANDBOX_IMAGE_NAME=host\n");
            var keyDirectory = Path.Combine(config, "credentials", environment.Id);
            Directory.CreateDirectory(keyDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var keyFile = Path.Combine(keyDirectory, "ANTHROPIC_ENVIRONMENT_KEY");
            File.WriteAllText(keyFile, environmentKey + "\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var orchestratorUnit = Path.Combine(units, $"hands-orchestrator@{environment.Id}.service");
            await VerifyUnitAsync(orchestratorUnit);
            Assert.DoesNotContain(environmentKey, File.ReadAllText(orchestratorTemplate));

            engine = await UnitProcess.StartAsync(engineUnit, readyLine: "hands engine: API ");
            orchestrator = await UnitProcess.StartAsync(orchestratorTemplate, environment.Id);
            Assert.Equal(Path.Combine(prefix, "releases/v1/hands"), ExecutableOf(engine.Pid));
            Assert.DoesNotContain(environmentKey, File.ReadAllText($"/proc/{orchestrator.Pid}/cmdline"));
            Assert.DoesNotContain(environmentKey, File.ReadAllText($"/proc/{orchestrator.Pid}/environ"));

            // A session's turn, held inside its first tool call.
            var session = await app.Sessions.CreateAsync(new CreateSessionRequest
            {
                Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
                EnvironmentId = environment.Id,
            });
            var sent = await app.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("go")]);
            var engineKey = EngineApiKeyFile.TryRead(engineData) ?? throw new InvalidOperationException("the engine made no key in " + engineData);
            using var sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri($"http://127.0.0.1:{apiPort}"), ApiKey = engineKey, MaxRetries = 0 });
            var sandboxName = Hands.Orchestrator.SandboxNames.ForSession(session.Id);
            await Eventually.TrueAsync(async () => await ExistsAsync(sandboxes, sandboxName, "/tmp/turn-started"), "the first tool call to start in the session's sandbox:\n" + orchestrator.Output, Bound);
            var sandbox = await sandboxes.GetAsync(sandboxName);
            sandboxIds.Add(sandbox.CanonicalId);
            var forwarder = Assert.Single(HostLeaks.ForwarderProcesses(engineData));
            var workerPid = await WorkerPidAsync(sandboxes, sandboxName);

            // The upgrade: v2 becomes current; the services restart as systemctl try-restart would (stop, start again).
            await RunAsync(Path.Combine(repo, "scripts/install.sh"), [.. locations, "--no-prerequisites", "--activate", "v2"]);
            Assert.Equal("releases/v2", new FileInfo(current).LinkTarget);
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases/v1")), "the previous release was removed while a forwarder and a worker run from it");
            await orchestrator.StopAsync();
            await engine.StopAsync();
            // KillMode=process: the engine alone stopped; its forwarder and the sandbox (the worker mid-call) live on.
            Assert.Equal(forwarder, Assert.Single(HostLeaks.ForwarderProcesses(engineData)));
            await engine.DisposeAsync();
            await orchestrator.DisposeAsync();
            engine = await UnitProcess.StartAsync(engineUnit, readyLine: "hands engine: API ");
            orchestrator = await UnitProcess.StartAsync(orchestratorTemplate, environment.Id);
            Assert.Equal(Path.Combine(prefix, "releases/v2/hands"), ExecutableOf(engine.Pid));
            Assert.Contains("v2", (await RunAsync(Path.Combine(prefix, "bin/hands"), ["--version"])).Output);

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

            // Uninstall as the README says: stop the units, then the uninstaller. Data kept; then --purge removes it.
            await orchestrator.StopAsync();
            await engine.StopAsync();
            var uninstall = await RunAsync(Path.Combine(prefix, "bin/hands-uninstall"), locations);
            Assert.Contains("sandbox(es) deleted", uninstall.Output);
            Assert.False(Directory.Exists(prefix), "the prefix is still there");
            Assert.False(File.Exists(engineUnit) || File.Exists(orchestratorTemplate), "a unit file is still there");
            Assert.Empty(HostLeaks.Find(engineData, sandboxIds));
            Assert.True(File.Exists(Path.Combine(engineData, "engine.db")), "the engine's data was not kept");
            Assert.True(File.Exists(keyFile), "the credentials were not kept");
            Assert.DoesNotContain(environmentKey, uninstall.Output);
            await RunAsync(Path.Combine(repo, "scripts/uninstall.sh"), [.. locations, "--purge"]);
            Assert.False(Directory.Exists(state) || Directory.Exists(config), "--purge left the state or the configuration");
            Assert.Empty(HostLeaks.Find(engineData, sandboxIds));
        }
        finally
        {
            foreach (var process in new[] { orchestrator, engine })
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

    private static async Task<(int ExitCode, string Output)> RunAsync(string file, IEnumerable<string> args, bool check = true)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            psi.ArgumentList.Add(arg);
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
