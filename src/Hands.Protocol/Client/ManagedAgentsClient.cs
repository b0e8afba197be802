namespace Hands.Protocol.Client;

/// <summary>
/// Client of the Claude Managed Agents API (beta <c>managed-agents-2026-04-01</c>): environments, agents, sessions,
/// events, the self-hosted work queue, skills, and the local control plane's extensions. Operations are grouped by
/// resource (<see cref="Work"/>, <see cref="Events"/>, ...). Thread-safe; share one per credential.
/// </summary>
public sealed class ManagedAgentsClient : IDisposable
{
    private readonly HttpClient? _ownedHttp;

    /// <summary>Creates a client for <paramref name="credential"/> with the given options.</summary>
    public ManagedAgentsClient(ManagedAgentsCredential credential, ManagedAgentsClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(credential);
        options ??= new ManagedAgentsClientOptions();
        HttpClient http;
        if (options.HttpClient is { } shared)
        {
            http = shared;
        }
        else
        {
            _ownedHttp = new HttpClient(new SocketsHttpHandler
            {
                PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
                ConnectTimeout = TimeSpan.FromSeconds(10),
                // The client injects its call span's context itself, per ManagedAgentsClientOptions.Tracing: the
                // handler's own propagation would send a traceparent even when ANTHROPIC_OPEN_TELEMETRY_PROPAGATION=false.
                ActivityHeadersPropagator = null,
            })
            {
                Timeout = Timeout.InfiniteTimeSpan,
            };
            http = _ownedHttp;
        }

        Pipeline = new ProtocolPipeline(http, options, credential);
        Credential = credential;
    }

    private ManagedAgentsClient(ProtocolPipeline pipeline, ManagedAgentsCredential credential)
    {
        Pipeline = pipeline;
        Credential = credential;
    }

    internal ProtocolPipeline Pipeline { get; }

    /// <summary>The credential every request of this client carries.</summary>
    public ManagedAgentsCredential Credential { get; }

    /// <summary>The base URL requests go to.</summary>
    public Uri BaseUrl => Pipeline.Options.BaseUrl;

    /// <summary>How this client traces (and helpers built on it, such as the worker's tool spans, follow).</summary>
    public ManagedAgentsTracingOptions Tracing => Pipeline.Options.Tracing;

    /// <summary>A client that shares this one's connections but authenticates with another credential.</summary>
    public ManagedAgentsClient WithCredential(ManagedAgentsCredential credential) =>
        new(Pipeline.WithCredential(credential), credential);

    public EnvironmentsOperations Environments => new(Pipeline);
    public AgentsOperations Agents => new(Pipeline);
    public SessionsOperations Sessions => new(Pipeline);
    public EventsOperations Events => new(Pipeline);
    public WorkOperations Work => new(Pipeline);
    public SkillsOperations Skills => new(Pipeline);
    public WebhookEndpointsOperations WebhookEndpoints => new(Pipeline);
    public MemoryStoresOperations MemoryStores => new(Pipeline);

    public void Dispose() => _ownedHttp?.Dispose();
}
