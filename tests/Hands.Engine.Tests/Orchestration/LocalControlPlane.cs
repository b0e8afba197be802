using System.Text.Json;
using Hands.ControlPlane;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// A real local control plane on the fixture's reserved port, with a self-hosted environment, its key and a scripted
/// agent; plus the helpers the orchestration tests share: options for an orchestrator, a turn driven to its end,
/// and the tool results of the latest turn. Disposing stops the server and deletes its data.
/// </summary>
internal sealed class LocalControlPlane : IAsyncDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "hands-orch-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public ControlPlaneServer Server { get; private set; } = null!;
    public ManagedAgentsClient Client { get; private set; } = null!;
    public ManagedAgentsClient EnvironmentClient { get; private set; } = null!;
    public string EnvironmentId { get; private set; } = "";
    public string EnvironmentKey { get; private set; } = "";
    public string AgentId { get; private set; } = "";

    /// <summary>The control plane's organization API key (tests look for it where it must not be).</summary>
    public const string ApiKey = "sk-ant-api03-orchestration-tests";

    public static async Task<LocalControlPlane> StartAsync(EngineFixture engine, string scenario = "demo", string? scenarioJson = null,
        Action<ControlPlaneOptions>? configure = null)
    {
        var plane = new LocalControlPlane();
        Directory.CreateDirectory(plane._data);
        string? scenarios = null;
        if (scenarioJson is not null)
        {
            scenarios = Path.Combine(plane._data, "scenarios");
            Directory.CreateDirectory(scenarios);
            await File.WriteAllTextAsync(Path.Combine(scenarios, scenario + ".json"), scenarioJson);
        }

        var options = new ControlPlaneOptions
        {
            Urls = $"http://127.0.0.1:{engine.ControlPlanePort}",
            DataDirectory = Path.Combine(plane._data, "cp"),
            ApiKey = ApiKey,
            ScenariosDirectory = scenarios,
            WebhookRetryBase = TimeSpan.FromMilliseconds(200),
        };
        configure?.Invoke(options);
        plane.Server = await ControlPlaneServer.StartAsync(options);
        plane.Client = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(options.ApiKey), new ManagedAgentsClientOptions { BaseUrl = plane.Server.BaseAddress });
        var environment = await plane.Client.Environments.CreateAsync(new CreateEnvironmentRequest
        {
            Name = "orchestration-tests",
            Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement,
        });
        plane.EnvironmentId = environment.Id;
        plane.EnvironmentKey = (await plane.Client.Environments.CreateKeyAsync(environment.Id)).Key;
        plane.EnvironmentClient = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(plane.EnvironmentKey),
            new ManagedAgentsClientOptions { BaseUrl = plane.Server.BaseAddress });
        plane.AgentId = (await plane.Client.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "orchestration-tests",
            Model = JsonSerializer.SerializeToElement("scripted:" + scenario, ProtocolJsonContext.Default.String),
            Tools = [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement],
        })).Id;
        return plane;
    }

    public OrchestratorOptions Options(Action<OrchestratorOptionsBuilder>? configure = null)
    {
        var builder = new OrchestratorOptionsBuilder();
        configure?.Invoke(builder);
        return new OrchestratorOptions
        {
            EnvironmentId = EnvironmentId,
            EnvironmentKey = EnvironmentKey,
            BaseUrl = Server.BaseAddress,
            Image = builder.Image ?? "host",
            WorkerMaxIdle = builder.WorkerMaxIdle,
            ResumeSuspendedSessions = builder.Resume,
            ForkAccess = builder.ForkAccess,
            RestrictWorkerApiRoutes = builder.RestrictApiRoutes,
            MaxConcurrentSpawns = builder.Concurrency,
            HandOffTimeout = TimeSpan.FromSeconds(30),
            MemoryMb = builder.MemoryMb,
            WorkerOtlpEndpoint = builder.WorkerOtlpPort is { } otlp ? new Uri($"http://127.0.0.1:{otlp}") : null,
            WorkerOtlpProtocol = builder.WorkerOtlpPort is null ? null : "http/protobuf",
        };
    }

    /// <summary>A session of <paramref name="agentId"/> (default: the plane's scripted agent) with <paramref name="resources"/>.</summary>
    public async Task<string> CreateSessionAsync(string? agentId = null, IEnumerable<JsonElement>? resources = null) =>
        (await Client.Sessions.CreateAsync(new CreateSessionRequest
        {
            Agent = JsonSerializer.SerializeToElement(agentId ?? AgentId, ProtocolJsonContext.Default.String),
            EnvironmentId = EnvironmentId,
            Resources = resources?.ToList(),
        })).Id;

    /// <summary>Another agent on <paramref name="scenario"/>: the agent toolset, plus <paramref name="customTools"/> and <paramref name="skills"/>.</summary>
    public async Task<string> CreateAgentAsync(string name, string scenario, IEnumerable<string>? customTools = null, List<AgentSkill>? skills = null) =>
        (await Client.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = name,
            Model = JsonSerializer.SerializeToElement("scripted:" + scenario, ProtocolJsonContext.Default.String),
            Tools = [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement, .. (customTools ?? []).Select(t => JsonDocument.Parse(t).RootElement)],
            Skills = skills,
        })).Id;

    /// <summary>Sends a message and waits (bounded) for the idle that ends the turn; returns its stop reason.</summary>
    public async Task<string> RunTurnAsync(string sessionId, string text, TimeSpan? timeout = null)
    {
        var sent = await Client.Events.SendAsync(sessionId, [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText(text)] }]);
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(120));
        await foreach (var e in Client.Events.StreamAsync(sessionId, sent[^1].Id, cts.Token))
        {
            if (e.Type == EventTypes.StatusIdle && e.StopReason?.Type is { } reason && reason != "requires_action")
            {
                return reason;
            }
        }

        throw new TimeoutException("the session stream ended before the turn did");
    }

    /// <summary>The text of the session's tool results, oldest first.</summary>
    public async Task<List<string>> ToolResultsAsync(string sessionId)
    {
        var results = new List<string>();
        await foreach (var e in Client.Events.ListAllAsync(sessionId))
        {
            if (e.Type == EventTypes.UserToolResult)
            {
                results.Add(e.Text);
            }
        }

        return results;
    }

    public async ValueTask DisposeAsync()
    {
        Client?.Dispose();
        EnvironmentClient?.Dispose();
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }

        Directory.Delete(_data, recursive: true);
    }
}

/// <summary>The few orchestrator settings the tests vary.</summary>
internal sealed class OrchestratorOptionsBuilder
{
    public string? Image { get; set; }
    public TimeSpan WorkerMaxIdle { get; set; } = TimeSpan.FromSeconds(2);
    public bool Resume { get; set; }
    public int Concurrency { get; set; } = 8;
    public WorkerForkAccess ForkAccess { get; set; }
    public bool RestrictApiRoutes { get; set; }
    public int MemoryMb { get; set; } = 1024;
    /// <summary>A loopback OTLP/HTTP receiver's port the session workers export to; null: they export nothing.</summary>
    public int? WorkerOtlpPort { get; set; }
}
