using System.Text.Json;
using Anthropic;
using Anthropic.Core;
using Anthropic.Models.Beta.Environments.Work;
using Anthropic.Models.Beta.Sessions.Events;
using Hands.ControlPlane;
using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.OfficialSdk.Tests;

/// <summary>
/// The official C# package <c>Anthropic</c> 13.14.0 (JIT) as a worker against <c>hands control-plane</c>: it sends
/// <c>anthropic-version: 2026-10-21</c>, no <c>?beta=true</c> and no SSE Accept header, and must be served all the same.
/// </summary>
public sealed class OfficialCSharpSdkTests : IAsyncLifetime
{
    private const string ApiKey = "sk-ant-api03-official-sdk-test";
    private readonly string _data = Path.Combine(Path.GetTempPath(), "hands-official-" + Guid.NewGuid().ToString("N")[..8]);
    private ControlPlaneServer? _server;

    public async Task InitializeAsync() =>
        _server = await ControlPlaneServer.StartAsync(new ControlPlaneOptions { Urls = "http://127.0.0.1:0", DataDirectory = _data, ApiKey = ApiKey });

    public async Task DisposeAsync()
    {
        await _server!.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    [Fact]
    public async Task The_official_package_polls_acks_heartbeats_lists_and_streams()
    {
        using var ours = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(ApiKey), new ManagedAgentsClientOptions { BaseUrl = _server!.BaseAddress });
        var env = await ours.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "official", Config = Json("""{"type":"self_hosted"}""") });
        var key = (await ours.Environments.CreateKeyAsync(env.Id)).Key;
        var agent = await ours.Agents.CreateAsync(new CreateAgentRequest { Name = "a", Model = Json("\"scripted:demo\""), Tools = [Json("""{"type":"agent_toolset_20260401"}""")] });
        var session = await ours.Sessions.CreateAsync(new CreateSessionRequest
        {
            Agent = Json($"\"{agent.Id}\""),
            EnvironmentId = env.Id,
            InitialEvents = [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("go")] }],
        });

        using var official = new AnthropicClient(new ClientOptions { BaseUrl = _server.BaseAddress.ToString().TrimEnd('/'), AuthToken = key, MaxRetries = 0 });
        var stats = await official.Beta.Environments.Work.Stats(env.Id, new WorkStatsParams());
        Assert.Equal(1, stats.Depth);

        var work = await official.Beta.Environments.Work.Poll(env.Id, new WorkPollParams { BlockMs = 500, AnthropicWorkerID = "official-csharp" });
        Assert.NotNull(work);
        Assert.Contains(session.Id, work.ToString(), StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(work.Secret));
        await official.Beta.Environments.Work.Ack(work.ID, new WorkAckParams { EnvironmentID = env.Id });
        var beat = await official.Beta.Environments.Work.Heartbeat(work.ID, new WorkHeartbeatParams { EnvironmentID = env.Id, ExpectedLastHeartbeat = "NO_HEARTBEAT" });
        Assert.True(beat.LeaseExtended);
        var again = await official.Beta.Environments.Work.Heartbeat(work.ID, new WorkHeartbeatParams { EnvironmentID = env.Id, ExpectedLastHeartbeat = beat.LastHeartbeat });
        Assert.True(again.LeaseExtended);

        var page = await official.Beta.Sessions.Events.List(session.Id, new EventListParams { Limit = 1000 });
        var types = page.Items.Select(e => e.Json.GetProperty("type").GetString()).ToList();
        Assert.Equal("user.message", types[0]);
        var toolUse = page.Items.Select(e => e.Json).Last(e => e.GetProperty("type").GetString() == "agent.tool_use");
        Assert.Equal("write", toolUse.GetProperty("name").GetString());

        // stream: post the tool result with our client, read the next events with the official one
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var streamed = new List<string>();
        var reader = Task.Run(async () =>
        {
            await foreach (var e in official.Beta.Sessions.Events.StreamStreaming(session.Id, new EventStreamParams(), cts.Token))
            {
                var type = e.Json.GetProperty("type").GetString()!;
                streamed.Add(type);
                if (type == "session.status_idle")
                {
                    break;
                }
            }
        });
        await Task.Delay(300);
        using var worker = ours.WithCredential(ManagedAgentsCredential.Bearer(key));
        await worker.Events.SendAsync(session.Id, [new SessionEvent
        {
            Type = EventTypes.UserToolResult,
            ToolUseId = toolUse.GetProperty("id").GetString(),
            Content = [ContentBlock.FromText("wrote 19 bytes")],
        }]);
        await reader;
        Assert.Equal("user.tool_result", streamed[0]);
        Assert.Contains("agent.tool_use", streamed);
        Assert.Equal("session.status_idle", streamed[^1]);
    }
}
