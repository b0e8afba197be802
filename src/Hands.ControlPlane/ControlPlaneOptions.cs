namespace Hands.ControlPlane;

/// <summary>Settings of the local control plane (<c>hands control-plane</c>).</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>Where to listen; loopback by default. Port 0 picks a free port.</summary>
    public string Urls { get; set; } = "http://127.0.0.1:8787";

    /// <summary>Directory of the SQLite database; created if missing.</summary>
    public string DataDirectory { get; set; } = ".hands/control-plane";

    /// <summary>
    /// The organization API key clients send as <c>x-api-key</c>. When null, the key stored by an earlier run is
    /// kept, or a new one is generated and reported once through <see cref="ControlPlaneServer.GeneratedApiKey"/>.
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>Extra scenario files (<c>NAME.json</c>) for agents whose model is <c>scripted:NAME</c>.</summary>
    public string? ScenariosDirectory { get; set; }

    /// <summary>Lease time-to-live reported by heartbeats (and granted at ack) when the worker asks for none.</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Bounds applied to a heartbeat's <c>desired_ttl_seconds</c>.</summary>
    public TimeSpan MinLeaseTtl { get; set; } = TimeSpan.FromSeconds(1);

    /// <inheritdoc cref="MinLeaseTtl"/>
    public TimeSpan MaxLeaseTtl { get; set; } = TimeSpan.FromSeconds(600);

    /// <summary>Redelivery of polled but un-acknowledged items when the poll names no <c>reclaim_older_than_ms</c>.</summary>
    public TimeSpan DefaultReclaim { get; set; } = TimeSpan.FromMilliseconds(5000);

    /// <summary>First webhook retry delay (doubles, jittered, capped at 120 s); three attempts in all.</summary>
    public TimeSpan WebhookRetryBase { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Attempts per webhook event and endpoint before it is dropped.</summary>
    public int WebhookMaxAttempts { get; set; } = 3;

    /// <summary>Timeout of one webhook delivery attempt.</summary>
    public TimeSpan WebhookTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How often an idle event stream sends <c>event: ping</c>.</summary>
    public TimeSpan StreamPingInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Identifiers reported in webhook payloads.</summary>
    public string OrganizationId { get; set; } = "org_local";

    /// <inheritdoc cref="OrganizationId"/>
    public string WorkspaceId { get; set; } = "wrkspc_local";

    /// <summary>
    /// Where sessions mount their memory stores: a <c>memory_store</c> resource's output-only <c>mount_path</c> is this
    /// directory plus a name derived from the store's name (the hosted service uses <c>/mnt/memory</c>).
    /// </summary>
    public string MemoryMountRoot { get; set; } = "/mnt/memory";

    /// <summary>Clock; tests may substitute one.</summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;
}
