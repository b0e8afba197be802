namespace Hands.Protocol.Client;

/// <summary>Options of <see cref="ManagedAgentsClient"/>.</summary>
public sealed class ManagedAgentsClientOptions
{
    /// <summary>The hosted service. <c>ANTHROPIC_BASE_URL</c> overrides it in every Hands command.</summary>
    public static readonly Uri DefaultBaseUrl = new("https://api.anthropic.com");

    /// <summary>API endpoint; the local control plane is e.g. <c>http://127.0.0.1:8787</c>.</summary>
    public Uri BaseUrl { get; set; } = DefaultBaseUrl;

    /// <summary>Value of the <c>anthropic-version</c> header.</summary>
    public string AnthropicVersion { get; set; } = "2023-06-01";

    /// <summary>Value of the <c>anthropic-beta</c> header on Managed Agents calls.</summary>
    public string Beta { get; set; } = "managed-agents-2026-04-01";

    /// <summary>Retries of connection errors, 408, 409, 429 and 5xx (the official SDKs' default is 2).</summary>
    public int MaxRetries { get; set; } = 2;

    /// <summary>First retry delay; doubles per attempt with jitter, capped at <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan InitialRetryDelay { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Largest delay between retries (a server <c>retry-after</c> up to 60 s is honoured as given).</summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>Timeout of a single non-streaming request.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Extra headers on every request (e.g. <c>x-stainless-helper</c>).</summary>
    public IDictionary<string, string> Headers { get; } = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);

    /// <summary>The clock of the client's waits and timeouts (retry backoff, request timeouts, <c>retry-after</c> dates); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Tracing (spans and trace headers), as the official SDKs' <c>openTelemetry</c> option; read from the SDKs'
    /// <c>ANTHROPIC_OPEN_TELEMETRY*</c> environment variables when the options are made.
    /// </summary>
    public ManagedAgentsTracingOptions Tracing { get; set; } = ManagedAgentsTracingOptions.FromEnvironment();

    /// <summary>
    /// An <see cref="HttpClient"/> to share; the client does not dispose one it did not create. Its handler's own
    /// trace-header propagation is its owner's business; a client this one creates leaves propagation to <see cref="Tracing"/>.
    /// </summary>
    public HttpClient? HttpClient { get; set; }
}
