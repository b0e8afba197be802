namespace Hands.Sandboxes.Client;

/// <summary>
/// Where and how <see cref="TensorlakeClient"/> connects. <see cref="FromEnvironment"/> reads the variables the
/// Tensorlake SDKs read (<c>TENSORLAKE_API_URL</c>, <c>TENSORLAKE_API_KEY</c>, <c>INDEXIFY_NAMESPACE</c>,
/// <c>TENSORLAKE_SANDBOX_PROXY_URL</c>) when it is called, not at start-up.
/// </summary>
public sealed class TensorlakeClientOptions
{
    public static readonly Uri CloudApiUrl = new("https://api.tensorlake.ai");

    /// <summary>The API URL; a loopback host selects the local (namespaced) mode the SDK uses for local servers.</summary>
    public Uri ApiUrl { get; set; } = CloudApiUrl;

    /// <summary>Lifecycle base; by default derived from <see cref="ApiUrl"/> (cloud: <c>api.</c> → <c>sandbox.</c>; local: <c>{api}/v1/namespaces/{ns}</c>).</summary>
    public Uri? LifecycleUrl { get; set; }

    /// <summary>Namespace of the local mode's paths.</summary>
    public string Namespace { get; set; } = "default";

    /// <summary>Project API key or personal access token, sent as Bearer. Null for a local engine without auth.</summary>
    public string? ApiKey { get; set; }

    /// <summary>Scope headers for a personal access token; sent only when both are set.</summary>
    public string? OrganizationId { get; set; }

    /// <inheritdoc cref="OrganizationId"/>
    public string? ProjectId { get; set; }

    /// <summary>Proxy to use when the server's answer carries no <c>sandbox_url</c>.</summary>
    public Uri? ProxyUrl { get; set; }

    /// <summary>Timeout of lifecycle calls (the SDK's default is 300 s). Proxy calls have none, so streams can run.</summary>
    public TimeSpan LifecycleTimeout { get; set; } = TimeSpan.FromSeconds(300);

    /// <summary>Retries of idempotent calls on 502/503/504 and connection errors. Create, start, run and stdin are never retried.</summary>
    public int MaxRetries { get; set; } = 5;

    /// <summary>Base of the retry backoff (<c>min(base·2^n, 15 s) × 0.75</c>, as the SDK).</summary>
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(100);

    public HttpMessageHandler? Handler { get; set; }

    /// <summary>The clock every wait and timeout of the client runs on (retry backoff, per-try timeouts, status polls); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>True for a loopback API URL: the local mode's paths and <c>Host: {id}.local</c> proxy routing.</summary>
    public bool IsLocal => ApiUrl.IsLoopback || ApiUrl.Host == "localhost";

    public static TensorlakeClientOptions FromEnvironment()
    {
        var options = new TensorlakeClientOptions();
        if (Environment.GetEnvironmentVariable("TENSORLAKE_API_URL") is { Length: > 0 } api && Uri.TryCreate(api, UriKind.Absolute, out var apiUri))
        {
            options.ApiUrl = apiUri;
        }

        options.ApiKey = Environment.GetEnvironmentVariable("TENSORLAKE_API_KEY") is { Length: > 0 } key ? key : null;
        options.Namespace = Environment.GetEnvironmentVariable("INDEXIFY_NAMESPACE") is { Length: > 0 } ns ? ns : "default";
        if (Environment.GetEnvironmentVariable("TENSORLAKE_SANDBOX_PROXY_URL") is { Length: > 0 } proxy && Uri.TryCreate(proxy, UriKind.Absolute, out var proxyUri))
        {
            options.ProxyUrl = proxyUri;
        }

        return options;
    }

    /// <summary>
    /// The base of the telemetry reads (network events, destinations, status): always <c>{api}/v1/namespaces/{ns}</c> on
    /// <see cref="ApiUrl"/>, as the official SDK's log endpoints, cloud or local (never the <c>sandbox.</c> host).
    /// </summary>
    public string ResolveTelemetryBase() => $"{ApiUrl.ToString().TrimEnd('/')}/v1/namespaces/{Uri.EscapeDataString(Namespace)}";

    /// <summary>The lifecycle base URL per the rules above (no trailing slash).</summary>
    public string ResolveLifecycleBase()
    {
        if (LifecycleUrl is { } explicitUrl)
        {
            return explicitUrl.ToString().TrimEnd('/');
        }

        var api = ApiUrl.ToString().TrimEnd('/');
        if (IsLocal)
        {
            return $"{api}/v1/namespaces/{Uri.EscapeDataString(Namespace)}";
        }

        return ApiUrl.Host.StartsWith("api.", StringComparison.OrdinalIgnoreCase)
            ? new UriBuilder(ApiUrl) { Host = "sandbox." + ApiUrl.Host[4..] }.Uri.ToString().TrimEnd('/')
            : api;
    }
}
