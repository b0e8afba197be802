using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Engine;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;

namespace Hands.Bench;

/// <summary>
/// The orchestrator on the real local stack (control plane, engine, hands-worker in each session's sandbox):
/// user message to the first tool result per mode, and a burst of 50 queued sessions to 50 attached workers with
/// bounded concurrency against one at a time, in one run.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class OrchestratorBench
{
    private const int Burst = 50;

    public static async Task<IEnumerable<string>> RunAsync(int n, string repoRoot)
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-bench-orch-" + Guid.NewGuid().ToString("N")[..8]);
        var (cpPort, apiPort, ingressPort) = (FreePort(), FreePort(), FreePort());
        const string apiKey = "sk-ant-api03-bench";
        await using var cp = await ControlPlaneServer.StartAsync(new ControlPlaneOptions { Urls = $"http://127.0.0.1:{cpPort}", DataDirectory = Path.Combine(data, "cp"), ApiKey = apiKey });
        await using var engine = await EngineServer.StartAsync(new EngineOptions
        {
            DataDirectory = Path.Combine(data, "engine"),
            ApiUrl = new Uri($"http://127.0.0.1:{apiPort}"),
            IngressUrl = new Uri($"http://127.0.0.1:{ingressPort}"),
            SandboxDaemonBinary = Path.Combine(repoRoot, "artifacts/hands-sandboxd/hands-sandboxd"),
            WorkerBinary = Path.Combine(repoRoot, "artifacts/hands-worker/hands-worker"),
            HostPorts = [cpPort, apiPort, ingressPort],
            MaxSandboxes = Burst + 8,
            ApiKey = BenchEngine.ApiKey,
            VolumeMb = 4096,
        }, logging => { });
        using var sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = engine.ApiAddress, ApiKey = BenchEngine.ApiKey, MaxRetries = 0 });
        using var client = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(apiKey), new ManagedAgentsClientOptions { BaseUrl = cp.BaseAddress });
        var rows = new List<string>();
        try
        {
            var (envId, envKey) = await EnvironmentAsync(client);
            using var envClient = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(envKey), new ManagedAgentsClientOptions { BaseUrl = cp.BaseAddress });
            var agent = (await client.Agents.CreateAsync(new CreateAgentRequest
            {
                Name = "bench",
                Model = JsonSerializer.SerializeToElement("scripted:demo", ProtocolJsonContext.Default.String),
                Tools = [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement],
            })).Id;
            OrchestratorOptions Options(int k) => new()
            {
                EnvironmentId = envId,
                EnvironmentKey = envKey,
                BaseUrl = cp.BaseAddress,
                Image = "host",
                WorkerMaxIdle = TimeSpan.FromSeconds(2),
                MaxConcurrentSpawns = k,
            };

            // Poll mode.
            var poll = new Measurements("poll: user message → first tool result (new session, new sandbox)");
            await using (var orchestrator = new WorkQueueOrchestrator(envClient, sandboxes, Options(8)))
            {
                using var stop = new CancellationTokenSource();
                var polling = orchestrator.RunPollingAsync(999, stop.Token);
                for (var i = 0; i < n; i++)
                {
                    poll.Add(await FirstToolResultAsync(client, agent, envId));
                }

                await stop.CancelAsync();
                await polling;
            }

            await BenchEngine.RemoveAllAsync(sandboxes);

            // Webhook mode (host receiver).
            var webhookPort = FreePort();
            var endpoint = await client.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest { Url = $"http://127.0.0.1:{webhookPort}/", EventTypes = ["session.status_run_started"] });
            var webhook = new Measurements("webhook: user message → first tool result (new session, new sandbox)");
            var receiverOrchestrator = new WorkQueueOrchestrator(envClient, sandboxes, Options(8));
            await using (var receiver = await WebhookReceiver.StartAsync(receiverOrchestrator, new WebhookReceiverOptions
            {
                Url = new Uri($"http://127.0.0.1:{webhookPort}"),
                SigningKey = endpoint.Secret!,
                FallbackDrainInterval = TimeSpan.FromHours(1),
            }))
            {
                for (var i = 0; i < n; i++)
                {
                    webhook.Add(await FirstToolResultAsync(client, agent, envId));
                }
            }

            await client.WebhookEndpoints.DeleteAsync(endpoint.Id);
            await BenchEngine.RemoveAllAsync(sandboxes);
            rows.Add(poll.Row("the long poll answers at once when work is queued"));
            rows.Add(webhook.Row("delivery, background drain"));

            // Burst: 50 queued sessions to 50 attached workers.
            var concurrent = await BurstAsync(client, envClient, sandboxes, agent, envId, Options(16));
            await BenchEngine.RemoveAllAsync(sandboxes);
            var sequential = await BurstAsync(client, envClient, sandboxes, agent, envId, Options(1));
            await BenchEngine.RemoveAllAsync(sandboxes);
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| burst: {Burst} queued sessions → {Burst} workers attached, K=16 | 1 | {concurrent.TotalMilliseconds:0} | — | {sequential.TotalMilliseconds / concurrent.TotalMilliseconds:0.0}x faster than one at a time (target ≥ 5x) |"));
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| burst: {Burst} queued sessions → {Burst} workers attached, one at a time | 1 | {sequential.TotalMilliseconds:0} | — | the reference orchestrator's way |"));
        }
        finally
        {
            await BenchEngine.RemoveAllAsync(sandboxes);
        }

        return rows;
    }

    private static async Task<(string Id, string Key)> EnvironmentAsync(ManagedAgentsClient client)
    {
        var env = await client.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "bench", Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement });
        return (env.Id, (await client.Environments.CreateKeyAsync(env.Id)).Key);
    }

    private static async Task<TimeSpan> FirstToolResultAsync(ManagedAgentsClient client, string agent, string envId)
    {
        var session = await client.Sessions.CreateAsync(new CreateSessionRequest { Agent = JsonSerializer.SerializeToElement(agent, ProtocolJsonContext.Default.String), EnvironmentId = envId });
        var start = Stopwatch.GetTimestamp();
        var sent = await client.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("go")] }]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        TimeSpan? first = null;
        await foreach (var e in client.Events.StreamAsync(session.Id, sent[^1].Id, cts.Token))
        {
            if (e.Type == EventTypes.UserToolResult)
            {
                first ??= Stopwatch.GetElapsedTime(start);
            }

            if (e.Type == EventTypes.StatusIdle && e.StopReason?.Type == "end_turn")
            {
                break;
            }
        }

        return first ?? throw new InvalidOperationException("the turn ended without a tool result");
    }

    private static async Task<TimeSpan> BurstAsync(ManagedAgentsClient client, ManagedAgentsClient envClient, TensorlakeClient sandboxes, string agent, string envId,
        OrchestratorOptions options)
    {
        for (var i = 0; i < Burst; i++)
        {
            await client.Sessions.CreateAsync(new CreateSessionRequest { Agent = JsonSerializer.SerializeToElement(agent, ProtocolJsonContext.Default.String), EnvironmentId = envId });
        }

        await using var orchestrator = new WorkQueueOrchestrator(envClient, sandboxes, options);
        var start = Stopwatch.GetTimestamp();
        var summary = await orchestrator.DrainAsync(CancellationToken.None);
        var elapsed = Stopwatch.GetElapsedTime(start);
        return summary.Spawned == Burst ? elapsed : throw new InvalidOperationException($"only {summary.Spawned} of {Burst} workers attached: {summary.Outcomes.FirstOrDefault(o => !o.Succeeded)?.Detail}");
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
