using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A work item of a self-hosted environment's queue (<c>BetaSelfHostedWork</c>).</summary>
public sealed class WorkItem
{
    [JsonPropertyName("type")] public string Type { get; set; } = "work";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("environment_id")] public string EnvironmentId { get; set; } = "";
    [JsonPropertyName("data")] public WorkData Data { get; set; } = new();
    /// <summary><c>queued</c>, <c>starting</c>, <c>active</c>, <c>stopping</c> or <c>stopped</c>; see <see cref="WorkState"/>.</summary>
    [JsonPropertyName("state")] public string State { get; set; } = WorkState.Queued;
    [JsonPropertyName("metadata")] public Dictionary<string, string> Metadata { get; set; } = [];
    /// <summary>Credential payload; set only on poll responses.</summary>
    [JsonPropertyName("secret")] public string? Secret { get; set; }
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("acknowledged_at")] public string? AcknowledgedAt { get; set; }
    [JsonPropertyName("started_at")] public string? StartedAt { get; set; }
    [JsonPropertyName("latest_heartbeat_at")] public string? LatestHeartbeatAt { get; set; }
    [JsonPropertyName("stop_requested_at")] public string? StopRequestedAt { get; set; }
    [JsonPropertyName("stopped_at")] public string? StoppedAt { get; set; }
}

/// <summary>What a work item is for: <c>{"type":"session","id":"sesn_..."}</c> (or a healthcheck).</summary>
public sealed class WorkData
{
    [JsonPropertyName("type")] public string Type { get; set; } = "session";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
}

/// <summary>Work item states.</summary>
public static class WorkState
{
    public const string Queued = "queued";
    public const string Starting = "starting";
    public const string Active = "active";
    public const string Stopping = "stopping";
    public const string Stopped = "stopped";
}

/// <summary>Response of the heartbeat call.</summary>
public sealed class WorkHeartbeat
{
    [JsonPropertyName("type")] public string Type { get; set; } = "work_heartbeat";
    [JsonPropertyName("last_heartbeat")] public string? LastHeartbeat { get; set; }
    [JsonPropertyName("lease_extended")] public bool LeaseExtended { get; set; }
    [JsonPropertyName("state")] public string State { get; set; } = WorkState.Active;
    [JsonPropertyName("ttl_seconds")] public int TtlSeconds { get; set; }
}

/// <summary>The server's view of a lease, carried in a 412 heartbeat error at <c>error.details.current_state</c>.</summary>
public sealed class HeartbeatPreconditionDetails
{
    [JsonPropertyName("error_code")] public string ErrorCode { get; set; } = "heartbeat_precondition_failed";
    [JsonPropertyName("current_state")] public WorkHeartbeat CurrentState { get; set; } = new();
}

/// <summary>Response of the queue stats call.</summary>
public sealed class WorkQueueStats
{
    [JsonPropertyName("type")] public string Type { get; set; } = "work_queue_stats";
    [JsonPropertyName("depth")] public int Depth { get; set; }
    [JsonPropertyName("pending")] public int Pending { get; set; }
    [JsonPropertyName("oldest_queued_at")] public string? OldestQueuedAt { get; set; }
    [JsonPropertyName("workers_polling")] public int? WorkersPolling { get; set; }
}

/// <summary>Body of the stop call.</summary>
public sealed class StopWorkRequest
{
    [JsonPropertyName("force")] public bool Force { get; set; }
}

/// <summary>Body of the work metadata update call (a merge patch: null deletes a key).</summary>
public sealed class UpdateWorkRequest
{
    [JsonPropertyName("metadata")] public Dictionary<string, string?> Metadata { get; set; } = [];
}

/// <summary>The decoded work <c>secret</c>: base64url JSON carrying the per-session token.</summary>
public sealed class WorkSecret
{
    [JsonPropertyName("sessions_token")] public string? SessionsToken { get; set; }
    [JsonPropertyName("api_base_url")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ApiBaseUrl { get; set; }
}
