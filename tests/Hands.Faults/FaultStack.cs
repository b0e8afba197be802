using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using System.Text.Json;
using Hands.Engine.Network;
using Hands.Engine.Storage;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Faults;

/// <summary>Settings of a <see cref="FaultStack"/>.</summary>
public sealed class FaultStackOptions
{
    /// <summary>The <c>hands</c> CLI assembly (<c>dotnet hands.dll</c>); default: beside the running program.</summary>
    public string HandsDll { get; init; } = Path.Combine(AppContext.BaseDirectory, "hands.dll");

    /// <summary>The NativeAOT <c>hands-sandboxd</c>.</summary>
    public required string SandboxDaemonBinary { get; init; }

    /// <summary>The NativeAOT <c>hands-worker</c> the engine mounts into sandboxes.</summary>
    public required string WorkerBinary { get; init; }

    /// <summary>Where the run keeps its data (control plane, engine, scenario); removed at the end.</summary>
    public string RunDirectory { get; init; } = Path.Combine(Path.GetTempPath(), "hands-faults-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>Where the processes' logs go (kept: the caller decides).</summary>
    public string? LogDirectory { get; init; }

    /// <summary>Bash steps in the scripted turn.</summary>
    public int Steps { get; init; } = 6;

    /// <summary>How long step N sleeps after writing its ledger line.</summary>
    public Func<int, TimeSpan> StepSleep { get; init; } = n => TimeSpan.FromSeconds(1.5 + (n % 3 * 0.25));

    /// <summary>The control plane's lease TTL (<c>--lease-ttl</c>): short, so that an outage longer than it stays short.</summary>
    public TimeSpan LeaseTtl { get; init; } = TimeSpan.FromSeconds(8);

    /// <summary>The orchestrator's <c>--concurrency</c>.</summary>
    public int Concurrency { get; init; } = 16;

    /// <summary>The engine's <c>--max-sandboxes</c>.</summary>
    public int MaxSandboxes { get; init; } = 64;

    /// <summary>The engine's <c>--hibernate-after</c>.</summary>
    public TimeSpan HibernateAfter { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The engine's <c>--volume-mb</c> (allocated in full).</summary>
    public int VolumeMb { get; init; } = 2048;

    /// <summary><c>RUNNER_MAX_IDLE_SECONDS</c>: how long a worker waits after its turn before it stops its item.</summary>
    public TimeSpan WorkerMaxIdle { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary><c>SANDBOX_TIMEOUT_SECONDS</c>: idle seconds (inbound only) before the engine suspends a session's sandbox.</summary>
    public int SandboxTimeoutSeconds { get; init; } = 3600;

    /// <summary><c>RESUME_SUSPENDED_SESSIONS</c>.</summary>
    public bool ResumeSuspendedSessions { get; init; }

    /// <summary>Progress lines (never keys).</summary>
    public Action<string> Log { get; init; } = _ => { };
}

/// <summary>
/// The real stack as separate processes, as an operator runs it: <c>hands control-plane</c>, <c>hands engine</c> and
/// <c>hands poll</c> (<c>dotnet hands.dll ...</c>), each of which can be killed with SIGKILL and started again on the
/// same ports and data; workers are started in sandboxes by the orchestrator as usual. Two <see cref="FaultProxy"/>s
/// stand between the control plane and its clients: one for the orchestrator, one for the workers (the engine's
/// host-port forward and <c>HANDS_WORKER_BASE_URL</c> point at it). The harness itself talks to the control plane and
/// the engine directly. The control plane serves a self-hosted environment and an agent playing
/// <see cref="LedgerScenario"/>. Disposing kills whatever still runs and removes everything, on failure too.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FaultStack : IAsyncDisposable
{
    private const string ApiKey = "sk-ant-api03-fault-injection";
    private const string EngineKey = "tl_apiKey_fault-injection-0123456789";
    private readonly FaultStackOptions _options;
    private readonly HashSet<string> _sandboxIds = new(StringComparer.Ordinal);
    private bool _tornDown;

    private FaultStack(FaultStackOptions options, string logDirectory)
    {
        _options = options;
        LogDirectory = logDirectory;
    }

    /// <summary>The control plane's process.</summary>
    public StackProcess ControlPlane { get; private set; } = null!;

    /// <summary>The engine's process.</summary>
    public StackProcess Engine { get; private set; } = null!;

    /// <summary>The orchestrator's process.</summary>
    public StackProcess Orchestrator { get; private set; } = null!;

    /// <summary>The proxy the orchestrator reaches the control plane through.</summary>
    public FaultProxy OrchestratorProxy { get; private set; } = null!;

    /// <summary>The proxy the workers reach the control plane through (via the engine's host-port forward).</summary>
    public FaultProxy WorkerProxy { get; private set; } = null!;

    /// <summary>The control plane with the organization key, directly (not through a proxy).</summary>
    public ManagedAgentsClient App { get; private set; } = null!;

    /// <summary>The control plane with the environment key, directly.</summary>
    public ManagedAgentsClient EnvironmentClient { get; private set; } = null!;

    /// <summary>The engine's API.</summary>
    public TensorlakeClient Sandboxes { get; private set; } = null!;

    /// <summary>The self-hosted environment served.</summary>
    public string EnvironmentId { get; private set; } = "";

    /// <summary>The agent that plays the ledger scenario.</summary>
    public string AgentId { get; private set; } = "";

    /// <summary>The engine's data directory.</summary>
    public string EngineData => Path.Combine(_options.RunDirectory, "engine");

    /// <summary>Where the processes' logs are.</summary>
    public string LogDirectory { get; }

    /// <summary>The settings it runs with.</summary>
    public FaultStackOptions Options => _options;

    /// <summary>Starts the proxies, the control plane, the engine and the orchestrator, and sets up the environment and agent.</summary>
    public static async Task<FaultStack> StartAsync(FaultStackOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        var logs = options.LogDirectory ?? Path.Combine(options.RunDirectory, "logs");
        Directory.CreateDirectory(options.RunDirectory);
        Directory.CreateDirectory(logs);
        var stack = new FaultStack(options, logs);
        try
        {
            await stack.StartAllAsync(cancellationToken).ConfigureAwait(false);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    private async Task StartAllAsync(CancellationToken cancellationToken)
    {
        var run = _options.RunDirectory;
        var scenarios = Path.Combine(run, "scenarios");
        Directory.CreateDirectory(scenarios);
        var (cpPort, apiPort, ingressPort) = (FreePort(), FreePort(), FreePort());
        var controlPlane = new Uri($"http://127.0.0.1:{cpPort}");
        OrchestratorProxy = await FaultProxy.StartAsync("orchestrator", 0, controlPlane).ConfigureAwait(false);
        WorkerProxy = await FaultProxy.StartAsync("workers", 0, controlPlane).ConfigureAwait(false);
        // Steps post their ledger lines to the workers' proxy too: the one host port a sandbox can reach.
        await File.WriteAllTextAsync(Path.Combine(scenarios, LedgerScenario.Name + ".json"), LedgerScenario.Json(_options.Steps, _options.StepSleep, WorkerProxy.Port),
            cancellationToken).ConfigureAwait(false);
        string Text(int value) => value.ToString(CultureInfo.InvariantCulture);
        ControlPlane = new StackProcess("control-plane", _options.HandsDll,
            ["control-plane", "--urls", controlPlane.ToString(), "--data", Path.Combine(run, "cp"), "--scenarios", scenarios, "--lease-ttl", Text((int)_options.LeaseTtl.TotalSeconds)],
            new Dictionary<string, string> { ["HANDS_API_KEY"] = ApiKey }, run, "hands control-plane listening on", Path.Combine(LogDirectory, "control-plane.log"));
        Engine = new StackProcess("engine", _options.HandsDll,
        [
            "engine", "--data", EngineData, "--urls", $"http://127.0.0.1:{apiPort}", "--ingress", $"http://127.0.0.1:{ingressPort}",
            "--volume-mb", Text(_options.VolumeMb), "--sandboxd", _options.SandboxDaemonBinary, "--worker", _options.WorkerBinary,
            "--host-port", Text(WorkerProxy.Port), "--max-sandboxes", Text(_options.MaxSandboxes),
            "--hibernate-after", Text((int)_options.HibernateAfter.TotalSeconds),
        ], new Dictionary<string, string> { ["HANDS_ENGINE_API_KEY"] = EngineKey }, run, "hands engine: API ", Path.Combine(LogDirectory, "engine.log"));
        await ControlPlane.StartAsync(cancellationToken).ConfigureAwait(false);
        await Engine.StartAsync(cancellationToken).ConfigureAwait(false);
        App = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(ApiKey), new ManagedAgentsClientOptions { BaseUrl = controlPlane });
        Sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri($"http://127.0.0.1:{apiPort}"), ApiKey = EngineKey });
        var environment = await App.Environments.CreateAsync(new CreateEnvironmentRequest
        {
            Name = "fault-injection",
            Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement,
        }, cancellationToken).ConfigureAwait(false);
        EnvironmentId = environment.Id;
        var environmentKey = (await App.Environments.CreateKeyAsync(environment.Id, cancellationToken).ConfigureAwait(false)).Key;
        EnvironmentClient = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(environmentKey), new ManagedAgentsClientOptions { BaseUrl = controlPlane });
        AgentId = (await App.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "fault-injection",
            Model = JsonSerializer.SerializeToElement(ScriptedModel, ProtocolJsonContext.Default.String),
            Tools = [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement],
        }, cancellationToken).ConfigureAwait(false)).Id;
        Orchestrator = new StackProcess("orchestrator", _options.HandsDll, ["poll", "--concurrency", Text(_options.Concurrency)], new Dictionary<string, string>
        {
            ["ANTHROPIC_ENVIRONMENT_ID"] = EnvironmentId,
            ["ANTHROPIC_ENVIRONMENT_KEY"] = environmentKey,
            ["ANTHROPIC_BASE_URL"] = $"http://127.0.0.1:{OrchestratorProxy.Port}",
            ["HANDS_WORKER_BASE_URL"] = $"http://{HostPortForwards.HostName}:{WorkerProxy.Port}",
            ["TENSORLAKE_API_URL"] = $"http://127.0.0.1:{apiPort}",
            ["HANDS_ENGINE_API_KEY"] = EngineKey,
            ["SANDBOX_IMAGE_NAME"] = "host",
            ["RUNNER_MAX_IDLE_SECONDS"] = Text((int)_options.WorkerMaxIdle.TotalSeconds),
            ["SANDBOX_TIMEOUT_SECONDS"] = Text(_options.SandboxTimeoutSeconds),
            ["RESUME_SUSPENDED_SESSIONS"] = _options.ResumeSuspendedSessions ? "true" : "false",
            ["ORCHESTRATOR_LOCK_FILE"] = Path.Combine(run, "orchestrator.lock"),
        }, run, "polling environment", Path.Combine(LogDirectory, "orchestrator.log"));
        await Orchestrator.StartAsync(cancellationToken).ConfigureAwait(false);
        _options.Log($"stack up: control plane {controlPlane}, engine :{apiPort}, proxies :{OrchestratorProxy.Port} (orchestrator) :{WorkerProxy.Port} (workers), lease TTL {_options.LeaseTtl.TotalSeconds:0} s, logs in {LogDirectory}");
    }

    /// <summary>The scripted model the agent plays.</summary>
    public static string ScriptedModel => "scripted:" + LedgerScenario.Name;

    /// <summary>Creates a session of the ledger agent (its work item is queued at once).</summary>
    public async Task<string> CreateSessionAsync(CancellationToken cancellationToken) => (await App.Sessions.CreateAsync(new CreateSessionRequest
    {
        Agent = JsonSerializer.SerializeToElement(AgentId, ProtocolJsonContext.Default.String),
        EnvironmentId = EnvironmentId,
    }, cancellationToken).ConfigureAwait(false)).Id;

    /// <summary>Sends the message that plays the turn; answers its event id.</summary>
    public async Task<string> SendTurnAsync(string sessionId, CancellationToken cancellationToken)
    {
        var sent = await App.Events.SendAsync(sessionId, [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("run the steps")] }],
            cancellationToken).ConfigureAwait(false);
        return sent[^1].Id ?? throw new InvalidOperationException("the control plane answered the message without an id");
    }

    /// <summary>The session's sandbox name.</summary>
    public static string SandboxOf(string sessionId) => SandboxNames.ForSession(sessionId);

    /// <summary>The session's ledger as its sandbox holds it; empty when there is none (yet).</summary>
    public async Task<string> ReadLedgerAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            var sandbox = await Sandboxes.GetAsync(SandboxOf(sessionId), cancellationToken).ConfigureAwait(false);
            return Encoding.UTF8.GetString(await Sandboxes.Proxy(sandbox).ReadFileAsync(LedgerScenario.LedgerPath, cancellationToken).ConfigureAwait(false));
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return "";
        }
    }

    /// <summary>SIGKILLs the <c>hands-worker</c> processes running in the session's sandbox, through the engine's process API; answers their pids.</summary>
    public async Task<IReadOnlyList<int>> KillWorkerAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            var proxy = Sandboxes.Proxy(await Sandboxes.GetAsync(SandboxOf(sessionId), cancellationToken).ConfigureAwait(false));
            var workers = (await proxy.ListProcessesAsync(cancellationToken).ConfigureAwait(false))
                .Where(p => p.Status == "running" && p.Command?.EndsWith("/hands-worker", StringComparison.Ordinal) == true).ToList();
            foreach (var worker in workers)
            {
                await proxy.SignalProcessAsync(worker.Pid.ToString(CultureInfo.InvariantCulture), 9, cancellationToken).ConfigureAwait(false);
            }

            return [.. workers.Select(w => w.Pid)];
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return [];
        }
    }

    /// <summary>The state of the session's work item (<see cref="WorkState"/>), null when it has none, <c>unknown</c> when the control plane did not answer.</summary>
    public async Task<string?> WorkStateAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            string? page = null;
            for (var pages = 0; pages < 1000; pages++)
            {
                var list = await EnvironmentClient.Work.ListAsync(EnvironmentId, 100, page, cancellationToken).ConfigureAwait(false);
                if (list.Data.FirstOrDefault(w => w.Data.Id == sessionId) is { } item)
                {
                    return item.State;
                }

                if ((page = list.NextPage) is null)
                {
                    return null;
                }
            }

            return null;
        }
        catch (Exception ex) when (ex is Hands.Common.HandsException or HttpRequestException)
        {
            return "unknown";
        }
    }

    /// <summary>Every sandbox the engine lists (terminated ones included); their ids are remembered for the cgroup checks.</summary>
    public async Task<List<SandboxInfo>> ListSandboxesAsync(CancellationToken cancellationToken)
    {
        var all = await Sandboxes.ListAllAsync(cancellationToken: cancellationToken).ToListAsync(cancellationToken).ConfigureAwait(false);
        lock (_sandboxIds)
        {
            _sandboxIds.UnionWith(all.Select(s => s.CanonicalId));
        }

        return all;
    }

    /// <summary>Deletes a session's sandbox, its workers' output saved first (one already gone is fine).</summary>
    public async Task DeleteSandboxAsync(string sessionId, CancellationToken cancellationToken)
    {
        try
        {
            await SaveWorkerLogsAsync(await Sandboxes.GetAsync(SandboxOf(sessionId), cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            await Sandboxes.DeleteAsync(SandboxOf(sessionId), cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            // Already gone.
        }
    }

    /// <summary>What the running engine holds that its records do not name (after recovery there must be nothing).</summary>
    public async Task<IReadOnlyList<string>> FindOrphansAsync(CancellationToken cancellationToken) =>
        HostLeaks.FindOrphans(EngineData, await ListSandboxesAsync(cancellationToken).ConfigureAwait(false),
            await Sandboxes.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false));

    /// <summary>
    /// Stops the orchestrator, deletes every sandbox and snapshot, checks the data volume is empty, stops the engine and
    /// the control plane, and answers what is left on the host (nothing, when all is well).
    /// </summary>
    public async Task<IReadOnlyList<string>> TearDownAsync(CancellationToken cancellationToken)
    {
        _tornDown = true;
        var leaks = new List<string>();
        await Orchestrator.StopAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        foreach (var sandbox in await ListSandboxesAsync(cancellationToken).ConfigureAwait(false))
        {
            if (sandbox.Status != SandboxStatus.Terminated)
            {
                await SaveWorkerLogsAsync(sandbox, cancellationToken).ConfigureAwait(false);
                await Sandboxes.DeleteAsync(sandbox.CanonicalId, cancellationToken).ConfigureAwait(false);
            }
        }

        foreach (var snapshot in await Sandboxes.ListSnapshotsAsync(cancellationToken).ConfigureAwait(false))
        {
            await Sandboxes.DeleteSnapshotAsync(snapshot.CanonicalId, cancellationToken).ConfigureAwait(false);
        }

        var volume = DataVolume.MountPointOf(EngineData);
        foreach (var part in new[] { "sandboxes", "layers", "checkpoints" })
        {
            var dir = Path.Combine(volume, part);
            if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).ToList() is { Count: > 0 } left)
            {
                leaks.Add($"{part} left in the data volume: {string.Join(", ", left.Select(Path.GetFileName))}");
            }
        }

        await Engine.StopAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        await ControlPlane.StopAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        leaks.AddRange(HostLeaks.Find(EngineData, SandboxIds()));
        return leaks;
    }

    /// <summary>Every worker's output in a sandbox, into the log directory (a worker never prints a credential).</summary>
    public async Task SaveWorkerLogsAsync(SandboxInfo sandbox, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        try
        {
            var proxy = Sandboxes.Proxy(sandbox);
            foreach (var worker in (await proxy.ListProcessesAsync(cancellationToken).ConfigureAwait(false))
                .Where(p => p.Command?.EndsWith("/hands-worker", StringComparison.Ordinal) == true))
            {
                var pid = worker.Pid.ToString(CultureInfo.InvariantCulture);
                var output = await proxy.GetOutputAsync(pid, cancellationToken: cancellationToken).ConfigureAwait(false);
                await File.WriteAllLinesAsync(Path.Combine(LogDirectory, $"worker-{sandbox.Name ?? sandbox.CanonicalId}-{pid}.log"),
                    [$"=== {worker.Status} exit {worker.ExitCode} signal {worker.Signal}", .. output.Lines], cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is TensorlakeException or HttpRequestException or IOException)
        {
            // Diagnostics only: a sandbox that does not answer has no logs to give.
        }
    }

    /// <summary>A session's events, one line each with the time the control plane processed it, into the log directory.</summary>
    public async Task SaveSessionLogAsync(string sessionId, IEnumerable<SessionEvent> events, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(events);
        await File.WriteAllLinesAsync(Path.Combine(LogDirectory, $"session-{sessionId}.log"), events.Select(e =>
            $"{e.ProcessedAt} {e.Type} {e.Id}{(e.ToolUseId is { } use ? " for " + use : "")}{(e.StopReason?.Type is { } r ? $" ({r})" : "")}{(e.IsError == true ? " ERROR" : "")} {Shorten(e.Text)}"),
            cancellationToken).ConfigureAwait(false);
    }

    private static string Shorten(string text) => text.Length > 120 ? text[..120].ReplaceLineEndings(" ") + "..." : text.ReplaceLineEndings(" ");

    private List<string> SandboxIds()
    {
        lock (_sandboxIds)
        {
            return [.. _sandboxIds];
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills whatever still runs (a failed run's processes included), removes what the engine left, and the run directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_tornDown && Sandboxes is not null && Engine?.Pid is not null)
        {
            // A run that failed before its teardown: stop the orchestrator first so nothing re-creates what is deleted.
            try
            {
                await Orchestrator.StopAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
                using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(120));
                foreach (var sandbox in await ListSandboxesAsync(bounded.Token).ConfigureAwait(false))
                {
                    if (sandbox.Status != SandboxStatus.Terminated)
                    {
                        await Sandboxes.DeleteAsync(sandbox.CanonicalId, bounded.Token).ConfigureAwait(false);
                    }
                }
            }
            catch (Exception ex) when (ex is TensorlakeException or HttpRequestException or OperationCanceledException or InvalidOperationException)
            {
                // Best effort; HostLeaks.Remove below takes the rest.
            }
        }

        foreach (var process in new[] { Orchestrator, Engine, ControlPlane })
        {
            if (process is not null)
            {
                await process.DisposeAsync().ConfigureAwait(false);
            }
        }

        foreach (var proxy in new[] { OrchestratorProxy, WorkerProxy })
        {
            if (proxy is not null)
            {
                await proxy.DisposeAsync().ConfigureAwait(false);
            }
        }

        App?.Dispose();
        EnvironmentClient?.Dispose();
        Sandboxes?.Dispose();
        HostLeaks.Remove(EngineData, SandboxIds());
        var logs = Path.GetFullPath(LogDirectory);
        var run = Path.GetFullPath(_options.RunDirectory);
        foreach (var entry in Directory.Exists(run) ? Directory.EnumerateFileSystemEntries(run).ToList() : [])
        {
            // The logs may live inside the run directory; they are the caller's to keep or remove.
            if (Path.GetFullPath(entry) == logs)
            {
                continue;
            }

            try
            {
                if (Directory.Exists(entry))
                {
                    Directory.Delete(entry, recursive: true);
                }
                else
                {
                    File.Delete(entry);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Left for the caller's leak report.
            }
        }
    }
}
