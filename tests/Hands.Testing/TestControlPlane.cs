using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Testing;

/// <summary>A real control plane on a loopback ephemeral port over a temporary data directory, removed on dispose.</summary>
public sealed class TestControlPlane : IAsyncDisposable
{
    public const string ApiKey = "sk-ant-api03-test-key";
    private readonly List<ManagedAgentsClient> _clients = [];

    private TestControlPlane(ControlPlaneServer server, string dataDirectory)
    {
        Server = server;
        DataDirectory = dataDirectory;
        App = Client(ManagedAgentsCredential.ApiKey(ApiKey));
        Raw = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
    }

    public ControlPlaneServer Server { get; }
    public string DataDirectory { get; }
    public ManagedAgentsClient App { get; }
    public HttpClient Raw { get; }
    public Uri BaseAddress => Server.BaseAddress;

    public static async Task<TestControlPlane> StartAsync(Action<ControlPlaneOptions>? configure = null, string? dataDirectory = null)
    {
        var data = dataDirectory ?? Path.Combine(Path.GetTempPath(), "hands-cp-test-" + Guid.NewGuid().ToString("N")[..10]);
        var options = new ControlPlaneOptions
        {
            Urls = "http://127.0.0.1:0",
            DataDirectory = data,
            ApiKey = ApiKey,
            WebhookRetryBase = TimeSpan.FromMilliseconds(100),
            WebhookTimeout = TimeSpan.FromSeconds(5),
        };
        configure?.Invoke(options);
        var server = await ControlPlaneServer.StartAsync(options);
        return new TestControlPlane(server, data);
    }

    public ManagedAgentsClient Client(ManagedAgentsCredential credential, int retries = 0)
    {
        var client = new ManagedAgentsClient(credential, new ManagedAgentsClientOptions { BaseUrl = Server.BaseAddress, MaxRetries = retries });
        _clients.Add(client);
        return client;
    }

    public ManagedAgentsClient Worker(string environmentKey) => Client(ManagedAgentsCredential.Bearer(environmentKey));

    public async Task<(AgentEnvironment Env, string Key)> CreateEnvironmentAsync(string name = "test-env")
    {
        var env = await App.Environments.CreateAsync(new CreateEnvironmentRequest { Name = name, Config = Json("""{"type":"self_hosted"}""") });
        var key = await App.Environments.CreateKeyAsync(env.Id);
        return (env, key.Key);
    }

    public Task<Agent> CreateAgentAsync(string model = "scripted:demo", string? toolsJson = null) =>
        App.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "test-agent",
            Model = JsonSerializer.SerializeToElement(model, ProtocolJsonContext.Default.String),
            Tools = JsonSerializer.Deserialize(toolsJson ?? """[{"type":"agent_toolset_20260401"}]""", ProtocolJsonContext.Default.JsonElement)
                .EnumerateArray().Select(e => e.Clone()).ToList(),
        });

    public Task<Session> CreateSessionAsync(string environmentId, string agentId, string? initialMessage = null) =>
        App.Sessions.CreateAsync(new CreateSessionRequest
        {
            Agent = JsonSerializer.SerializeToElement(agentId, ProtocolJsonContext.Default.String),
            EnvironmentId = environmentId,
            InitialEvents = initialMessage is null ? null : [UserMessage(initialMessage)],
        });

    /// <summary>An environment with one session whose work item a worker has polled (not yet acknowledged).</summary>
    public async Task<(AgentEnvironment Env, string Key, ManagedAgentsClient Worker, WorkItem Item)> PolledItemAsync()
    {
        var (env, key) = await CreateEnvironmentAsync();
        var agent = await CreateAgentAsync();
        await CreateSessionAsync(env.Id, agent.Id);
        var worker = Worker(key);
        var item = await worker.Work.PollAsync(env.Id, 100) ?? throw new InvalidOperationException("no work item was queued");
        return (env, key, worker, item);
    }

    public static SessionEvent UserMessage(string text) => new() { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText(text)] };

    public static SessionEvent ToolResult(string toolUseId, string text, bool isError = false) =>
        new() { Type = EventTypes.UserToolResult, ToolUseId = toolUseId, Content = [ContentBlock.FromText(text)], IsError = isError };

    public static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();

    /// <summary>Sends a raw request; <paramref name="headers"/> null means the API key and the usual headers.</summary>
    public async Task<(int Status, JsonElement Body, HttpResponseMessage Response)> SendRawAsync(
        HttpMethod method, string path, string? body = null, Dictionary<string, string>? headers = null)
    {
        using var request = new HttpRequestMessage(method, path);
        headers ??= new Dictionary<string, string> { ["x-api-key"] = ApiKey };
        if (!headers.ContainsKey("anthropic-version"))
        {
            headers["anthropic-version"] = "2023-06-01";
        }

        if (!headers.ContainsKey("anthropic-beta"))
        {
            headers["anthropic-beta"] = "managed-agents-2026-04-01";
        }

        foreach (var (k, v) in headers)
        {
            if (v.Length > 0)
            {
                request.Headers.TryAddWithoutValidation(k, v);
            }
        }

        if (body is not null)
        {
            request.Headers.ExpectContinue = body.Length > 1024 * 1024; // let the server refuse a huge body before it is sent
            request.Content = new StringContent(body, Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        var response = await Raw.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var json = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return ((int)response.StatusCode, json, response);
    }

    /// <summary>Reads the stream until <paramref name="until"/> matches (inclusive) or the timeout passes.</summary>
    public static async Task<List<SessionEvent>> CollectAsync(ManagedAgentsClient client, string sessionId, Func<SessionEvent, bool> until,
        string? lastEventId = null, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var events = new List<SessionEvent>();
        await foreach (var e in client.Events.StreamAsync(sessionId, lastEventId, cts.Token))
        {
            events.Add(e);
            if (until(e))
            {
                break;
            }
        }

        return events;
    }

    public static bool IsIdle(SessionEvent e, string reason) => e.Type == EventTypes.StatusIdle && e.StopReason?.Type == reason;

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _clients)
        {
            c.Dispose();
        }

        Raw.Dispose();
        await Server.DisposeAsync();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
