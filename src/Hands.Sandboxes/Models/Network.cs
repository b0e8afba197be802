using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>
/// One host observation of a sandbox's network (<c>GET /sandboxes/{id}/network/events</c>), with the field names and
/// types of Tensorlake's SDK (<c>crates/cloud-sdk/src/sandboxes/network.rs</c>). A connection is not a request;
/// a counter the collector did not see stays null rather than 0.
/// </summary>
public sealed class NetworkEvent
{
    [JsonPropertyName("namespace")] public string Namespace { get; set; } = "";
    [JsonPropertyName("sandbox_id")] public string SandboxId { get; set; } = "";
    /// <summary>The host that observed it (the local engine: its host name).</summary>
    [JsonPropertyName("executor_id")] public string ExecutorId { get; set; } = "";
    /// <summary>The sandbox's run it belongs to (the local engine: the sandbox id; one allocation per sandbox).</summary>
    [JsonPropertyName("allocation_id")] public string AllocationId { get; set; } = "";
    /// <summary>The collector's session; a new one after each engine start.</summary>
    [JsonPropertyName("capture_session")] public string CaptureSession { get; set; } = "";
    /// <summary>Increases with every event the server stores: the order of the stream.</summary>
    [JsonPropertyName("sequence")] public long Sequence { get; set; }
    [JsonPropertyName("observed_at_ms")] public long ObservedAtMs { get; set; }
    /// <summary>One of <see cref="NetworkEventKinds"/>.</summary>
    [JsonPropertyName("event_kind")] public string EventKind { get; set; } = "";
    [JsonPropertyName("connection_id")] public string ConnectionId { get; set; } = "";
    /// <summary>One for a tracked connection; for a policy event, the refused attempts (packets) it stands for.</summary>
    [JsonPropertyName("observed_connections")] public long ObservedConnections { get; set; }
    [JsonPropertyName("source_ip")] public string SourceIp { get; set; } = "";
    [JsonPropertyName("source_port")] public int SourcePort { get; set; }
    [JsonPropertyName("destination_ip")] public string DestinationIp { get; set; } = "";
    [JsonPropertyName("destination_port")] public int DestinationPort { get; set; }
    /// <summary><c>tcp</c>, <c>udp</c>, <c>icmp</c>…, or <c>ip</c> when the rule that counted it matches any protocol.</summary>
    [JsonPropertyName("transport")] public string Transport { get; set; } = "";
    [JsonPropertyName("original_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? OriginalBytes { get; set; }
    [JsonPropertyName("reply_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? ReplyBytes { get; set; }
    [JsonPropertyName("original_packets"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? OriginalPackets { get; set; }
    [JsonPropertyName("reply_packets"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? ReplyPackets { get; set; }
    [JsonPropertyName("kernel_started_at_ns"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? KernelStartedAtNs { get; set; }
    [JsonPropertyName("kernel_destroyed_at_ns"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? KernelDestroyedAtNs { get; set; }
    /// <summary>The kernel's <c>IPS_*</c> status bits as far as observed (seen reply 2, assured 4, confirmed 8).</summary>
    [JsonPropertyName("conntrack_status")] public uint ConntrackStatus { get; set; }
    /// <summary>The kernel's <c>TCP_CONNTRACK_*</c> state number (3 established, 7 time wait…); null for other transports.</summary>
    [JsonPropertyName("tcp_state"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? TcpState { get; set; }
    /// <summary>A bounded status code (never a payload): which rule, why a connection ended, why there is a gap.</summary>
    [JsonPropertyName("detail")] public string Detail { get; set; } = "";
    /// <summary>One of <see cref="NetworkObservationSources"/>.</summary>
    [JsonPropertyName("observation_source")] public string ObservationSource { get; set; } = "";
    [JsonPropertyName("dns_name"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? DnsName { get; set; }
    [JsonPropertyName("dns_query_type"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? DnsQueryType { get; set; }
    [JsonPropertyName("dns_response_code"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? DnsResponseCode { get; set; }
    /// <summary>Only A/AAAA answer addresses.</summary>
    [JsonPropertyName("dns_answers")] public List<string> DnsAnswers { get; set; } = [];
    /// <summary><c>allow</c> or <c>deny</c> (<see cref="NetworkPolicyActions"/>); null when no policy decision applies.</summary>
    [JsonPropertyName("policy_action"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? PolicyAction { get; set; }
}

/// <summary>One page of <c>GET /sandboxes/{id}/network/events</c>; <see cref="NextCursor"/> is null on the last page.</summary>
public sealed class NetworkEventsResponse
{
    [JsonPropertyName("events")] public List<NetworkEvent> Events { get; set; } = [];
    [JsonPropertyName("next_cursor"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? NextCursor { get; set; }
    /// <summary>The window the server applied (defaults filled in).</summary>
    [JsonPropertyName("from_ms")] public long FromMs { get; set; }
    [JsonPropertyName("to_ms")] public long ToMs { get; set; }
}

/// <summary>Connections to one destination in a window; bytes are the kernel's cumulative counters of those connections.</summary>
public sealed class NetworkDestination
{
    [JsonPropertyName("destination_ip")] public string DestinationIp { get; set; } = "";
    [JsonPropertyName("destination_port")] public int DestinationPort { get; set; }
    [JsonPropertyName("transport")] public string Transport { get; set; } = "";
    [JsonPropertyName("observed_connections")] public long ObservedConnections { get; set; }
    [JsonPropertyName("original_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? OriginalBytes { get; set; }
    [JsonPropertyName("reply_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? ReplyBytes { get; set; }
    [JsonPropertyName("unknown_byte_connections")] public long UnknownByteConnections { get; set; }
    [JsonPropertyName("degraded_connections")] public long DegradedConnections { get; set; }
}

/// <summary><c>GET /sandboxes/{id}/network/destinations</c>: the window is whole UTC minutes, both ends inclusive.</summary>
public sealed class NetworkDestinationsResponse
{
    [JsonPropertyName("destinations")] public List<NetworkDestination> Destinations { get; set; } = [];
    /// <summary>More destinations than <c>limit</c> were seen; narrow the window.</summary>
    [JsonPropertyName("truncated")] public bool Truncated { get; set; }
    [JsonPropertyName("from_ms")] public long FromMs { get; set; }
    [JsonPropertyName("to_ms")] public long ToMs { get; set; }
}

/// <summary><c>GET /sandboxes/{id}/network/status</c>: the collector's health for this sandbox, not a claim of silence.</summary>
public sealed class NetworkCaptureStatus
{
    /// <summary><c>recent</c>, <c>stale</c> or <c>unknown</c>.</summary>
    [JsonPropertyName("state")] public string State { get; set; } = "unknown";
    [JsonPropertyName("last_observed_at_ms"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public long? LastObservedAtMs { get; set; }
    [JsonPropertyName("allocation_id"), JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? AllocationId { get; set; }
    /// <summary>What is captured: observation sources (<see cref="NetworkObservationSources"/>).</summary>
    [JsonPropertyName("coverage")] public List<string> Coverage { get; set; } = [];
    /// <summary>What is not, in words.</summary>
    [JsonPropertyName("limitations")] public List<string> Limitations { get; set; } = [];
}

/// <summary>The query of the events and destinations calls; null fields are left to the server's defaults.</summary>
public sealed record NetworkQuery
{
    /// <summary>Start of the window, Unix milliseconds (server default: an hour before <see cref="ToMs"/>).</summary>
    public long? FromMs { get; init; }
    /// <summary>End of the window, Unix milliseconds (server default: now).</summary>
    public long? ToMs { get; init; }
    /// <summary>1 to 500 (server default 100).</summary>
    public int? Limit { get; init; }
    /// <summary>A <c>next_cursor</c> from a previous events page (events only).</summary>
    public string? Cursor { get; init; }
}

/// <summary>Values of <see cref="NetworkEvent.ObservationSource"/>, as Tensorlake names them.</summary>
public static class NetworkObservationSources
{
    public const string Conntrack = "conntrack";
    public const string DnsPacket = "dns_packet";
    public const string Policy = "policy";
    public const string EgressProxy = "egress_proxy";
    public const string Collector = "collector";
}

/// <summary>Values of <see cref="NetworkEvent.EventKind"/> the local engine records (Tensorlake leaves the set open).</summary>
public static class NetworkEventKinds
{
    /// <summary>The kernel started tracking a connection the sandbox opened.</summary>
    public const string ConnectionNew = "connection_new";
    /// <summary>A tracked connection's counters moved since the previous observation.</summary>
    public const string ConnectionUpdate = "connection_update";
    /// <summary>The kernel's tracking entry is gone (closed and expired, or the namespace went away).</summary>
    public const string ConnectionDestroy = "connection_destroy";
    /// <summary>The egress policy refused packets.</summary>
    public const string Policy = "policy";
    /// <summary>A host name in the policy resolved by the engine.</summary>
    public const string Dns = "dns";
    /// <summary>The collector could not observe for a while: counts around it are incomplete.</summary>
    public const string Gap = "gap";
}

/// <summary>Values of <see cref="NetworkEvent.PolicyAction"/>.</summary>
public static class NetworkPolicyActions
{
    public const string Allow = "allow";
    public const string Deny = "deny";
}
