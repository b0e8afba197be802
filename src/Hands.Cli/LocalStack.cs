using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Engine;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Cli;

/// <summary>
/// The whole system on this machine, in process: the local control plane, the local engine (with the control plane's,
/// its own API's and its ingress's ports forwarded into sandboxes as <c>host.hands.internal</c>), a self-hosted
/// environment with a key, and a polling orchestrator. Everything it made is removed on dispose, sandboxes included.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class LocalStack : IAsyncDisposable
{
    private readonly CancellationTokenSource _stopPolling = new();
    private readonly string _data;
    private readonly bool _ephemeral;
    private Task _polling = Task.CompletedTask;
    private ILoggerFactory? _logging;

    private LocalStack(string data, bool ephemeral)
    {
        _data = data;
        _ephemeral = ephemeral;
    }

    public ControlPlaneServer ControlPlane { get; private set; } = null!;
    public EngineServer Engine { get; private set; } = null!;
    public ManagedAgentsClient Client { get; private set; } = null!;
    public TensorlakeClient Sandboxes { get; private set; } = null!;
    public WorkQueueOrchestrator Orchestrator { get; private set; } = null!;
    public string ApiKey { get; private set; } = "";
    public string EngineApiKey { get; } = "tl_apiKey_" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
    public string EnvironmentId { get; private set; } = "";

    /// <summary>
    /// Starts everything; <paramref name="progress"/> hears one line per step. With <paramref name="workerOtlpEndpoint"/>
    /// (an OTLP/HTTP receiver on this host's loopback, such as the dashboard's), every worker exports its traces there
    /// over <c>http/protobuf</c>: the engine forwards that port into sandboxes as <c>host.hands.internal</c>.
    /// </summary>
    public static async Task<LocalStack> StartAsync(string? dataDirectory, int controlPlanePort, int enginePort, int ingressPort, TimeSpan workerMaxIdle,
        Action<string> progress, Action<ILoggingBuilder>? logging, CancellationToken ct, Uri? workerOtlpEndpoint = null)
    {
        var ephemeral = dataDirectory is null;
        var stack = new LocalStack(dataDirectory ?? Path.Combine(Path.GetTempPath(), "hands-local-" + Guid.NewGuid().ToString("N")[..8]), ephemeral);
        try
        {
            await stack.StartCoreAsync(controlPlanePort, enginePort, ingressPort, workerMaxIdle, progress, logging, workerOtlpEndpoint, ct);
            return stack;
        }
        catch
        {
            await stack.DisposeAsync();
            throw;
        }
    }

    private async Task StartCoreAsync(int controlPlanePort, int enginePort, int ingressPort, TimeSpan workerMaxIdle, Action<string> progress,
        Action<ILoggingBuilder>? logging, Uri? workerOtlpEndpoint, CancellationToken ct)
    {
        // The engine must know the ports to forward before it starts, so free ones are picked up front.
        controlPlanePort = controlPlanePort == 0 ? FreePort() : controlPlanePort;
        enginePort = enginePort == 0 ? FreePort() : enginePort;
        ingressPort = ingressPort == 0 ? FreePort() : ingressPort;
        progress($"starting the local control plane on 127.0.0.1:{controlPlanePort}");
        ApiKey = "sk-ant-api03-local-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        ControlPlane = await ControlPlaneServer.StartAsync(new ControlPlaneOptions
        {
            Urls = $"http://127.0.0.1:{controlPlanePort}",
            DataDirectory = Path.Combine(_data, "control-plane"),
            ApiKey = ApiKey,
        }, cancellationToken: ct);
        Client = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(ApiKey), new ManagedAgentsClientOptions { BaseUrl = ControlPlane.BaseAddress });
        progress($"starting the sandbox engine on 127.0.0.1:{enginePort} (ingress :{ingressPort})");
        Engine = await EngineServer.StartAsync(new EngineOptions
        {
            DataDirectory = Path.Combine(_data, "engine"),
            ApiUrl = new Uri($"http://127.0.0.1:{enginePort}"),
            IngressUrl = new Uri($"http://127.0.0.1:{ingressPort}"),
            ApiKey = EngineApiKey,
            HostPorts = workerOtlpEndpoint is null ? [controlPlanePort, enginePort, ingressPort] : [controlPlanePort, enginePort, ingressPort, workerOtlpEndpoint.Port],
            // A throw-away stack needs little; a kept one gets the engine's default (half the free disk, at most 16 GiB).
            VolumeMb = _ephemeral ? 4096 : null,
        }, logging ?? (_ => { }), ct);
        Sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = Engine.ApiAddress, ApiKey = EngineApiKey });
        var environment = await Client.Environments.CreateAsync(new CreateEnvironmentRequest
        {
            Name = "hands-local",
            Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement,
        }, ct);
        EnvironmentId = environment.Id;
        var key = await Client.Environments.CreateKeyAsync(environment.Id, ct);
        _logging = LoggerFactory.Create(b => (logging ?? (_ => { }))(b));
        var options = new OrchestratorOptions
        {
            EnvironmentId = environment.Id,
            EnvironmentKey = key.Key,
            BaseUrl = ControlPlane.BaseAddress,
            WorkerMaxIdle = workerMaxIdle,
            Logger = _logging.CreateLogger("Hands.Orchestrator"),
            WorkerOtlpEndpoint = workerOtlpEndpoint,
            WorkerOtlpProtocol = workerOtlpEndpoint is null ? null : "http/protobuf",
        };
        // No orchestrator lock and no claims record: every start of the stack serves a new environment, so no later
        // orchestrator could settle this one's claims.
        Orchestrator = new WorkQueueOrchestrator(
            Commands.OrchestratorSettings.EnvironmentClient(ControlPlane.BaseAddress, key.Key),
            Sandboxes, options);
        progress($"orchestrator polling environment {environment.Id}: one sandbox per session");
        _polling = Orchestrator.RunPollingAsync(999, _stopPolling.Token);
    }

    /// <summary>An agent whose model plays the built-in scenario <paramref name="scenario"/>, with the built-in tools.</summary>
    public async Task<string> CreateScriptedAgentAsync(string name, string scenario, CancellationToken ct) =>
        (await Client.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = name,
            Model = JsonSerializer.SerializeToElement("scripted:" + scenario, Hands.Protocol.Json.ProtocolJsonContext.Default.String),
            Tools = Commands.AgentCommand.ParseTools("builtin"),
        }, ct)).Id;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Stops polling, removes every sandbox the engine holds, stops the servers, deletes throw-away data.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopPolling.CancelAsync();
        try
        {
            await _polling;
        }
        catch (Exception ex) when (ex is OrchestratorException or ManagedAgentsException)
        {
            // Shutting down anyway.
        }

        if (Orchestrator is not null)
        {
            await Orchestrator.DisposeAsync();
        }

        if (Sandboxes is not null)
        {
            await foreach (var sandbox in Sandboxes.ListAllAsync())
            {
                if (sandbox.Status != Hands.Sandboxes.Models.SandboxStatus.Terminated)
                {
                    await Sandboxes.DeleteAsync(sandbox.CanonicalId);
                }
            }

            Sandboxes.Dispose();
        }

        if (Engine is not null)
        {
            await Engine.DisposeAsync();
        }

        Client?.Dispose();
        if (ControlPlane is not null)
        {
            await ControlPlane.DisposeAsync();
        }

        _logging?.Dispose();
        _stopPolling.Dispose();
        if (_ephemeral && Directory.Exists(_data))
        {
            try
            {
                Directory.Delete(_data, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
