using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A session (<c>type:"session"</c>): one running agent instance in an environment.</summary>
public sealed class Session
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "session";
    [JsonPropertyName("agent")] public SessionAgent Agent { get; set; } = new();
    [JsonPropertyName("environment_id")] public string EnvironmentId { get; set; } = "";
    /// <summary><c>idle</c>, <c>running</c>, <c>rescheduling</c> or <c>terminated</c>; see <see cref="SessionStatus"/>.</summary>
    [JsonPropertyName("status")] public string Status { get; set; } = SessionStatus.Idle;
    [JsonPropertyName("title")] public string? Title { get; set; }
    [JsonPropertyName("metadata")] public Dictionary<string, string> Metadata { get; set; } = [];
    [JsonPropertyName("resources")] public List<JsonElement> Resources { get; set; } = [];
    [JsonPropertyName("vault_ids")] public List<string> VaultIds { get; set; } = [];
    [JsonPropertyName("budget")] public JsonElement? Budget { get; set; }
    [JsonPropertyName("usage")] public SessionUsage Usage { get; set; } = new();
    [JsonPropertyName("stats")] public SessionStats Stats { get; set; } = new();
    [JsonPropertyName("outcome_evaluations")] public List<JsonElement> OutcomeEvaluations { get; set; } = [];
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("updated_at")] public string UpdatedAt { get; set; } = "";
    [JsonPropertyName("archived_at")] public string? ArchivedAt { get; set; }
}

/// <summary>Session status values.</summary>
public static class SessionStatus
{
    public const string Idle = "idle";
    public const string Running = "running";
    public const string Rescheduling = "rescheduling";
    public const string Terminated = "terminated";
}

/// <summary>The agent as resolved when the session was created (a snapshot of one version).</summary>
public sealed class SessionAgent
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "agent";
    [JsonPropertyName("version")] public int Version { get; set; }
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("description")] public string? Description { get; set; }
    [JsonPropertyName("model")] public JsonElement Model { get; set; }
    [JsonPropertyName("system")] public string? System { get; set; }
    [JsonPropertyName("tools")] public List<JsonElement> Tools { get; set; } = [];
    [JsonPropertyName("mcp_servers")] public List<JsonElement> McpServers { get; set; } = [];
    [JsonPropertyName("skills")] public List<AgentSkill> Skills { get; set; } = [];
}

/// <summary>Token and cost counters of a session.</summary>
public sealed class SessionUsage
{
    [JsonPropertyName("input_tokens")] public long InputTokens { get; set; }
    [JsonPropertyName("output_tokens")] public long OutputTokens { get; set; }
    [JsonPropertyName("cache_read_input_tokens")] public long CacheReadInputTokens { get; set; }
    [JsonPropertyName("cache_creation_input_tokens")] public long CacheCreationInputTokens { get; set; }
}

/// <summary>Wall-clock counters of a session.</summary>
public sealed class SessionStats
{
    [JsonPropertyName("active_seconds")] public double ActiveSeconds { get; set; }
    [JsonPropertyName("duration_seconds")] public double DurationSeconds { get; set; }
}

/// <summary>Body of <c>POST /v1/sessions</c>.</summary>
public sealed class CreateSessionRequest
{
    /// <summary>An agent id string, or an <c>{"type":"agent","id","version"}</c> object.</summary>
    [JsonPropertyName("agent")] public JsonElement Agent { get; set; }
    [JsonPropertyName("environment_id")] public string EnvironmentId { get; set; } = "";
    [JsonPropertyName("title")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Title { get; set; }
    [JsonPropertyName("metadata")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Metadata { get; set; }
    [JsonPropertyName("initial_events")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<SessionEvent>? InitialEvents { get; set; }
    /// <summary>Self-hosted: <c>memory_store</c> resources only (<c>{"type":"memory_store","memory_store_id","access"?,"instructions"?}</c>).</summary>
    [JsonPropertyName("resources")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<JsonElement>? Resources { get; set; }
}

/// <summary>Body of <c>POST /v1/sessions/{id}/events</c>, and its response.</summary>
public sealed class SessionEventList
{
    [JsonPropertyName("events")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<SessionEvent>? Events { get; set; }
    [JsonPropertyName("data")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<SessionEvent>? Data { get; set; }
}
