using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>
/// One session event. The API has dozens of event types that share a handful of fields, so this is one flat type:
/// fields a given <see cref="Type"/> does not use stay null and are not written. Unknown fields are kept in
/// <see cref="Extra"/> so nothing a newer server sends is lost on a round trip.
/// </summary>
public sealed class SessionEvent
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    [JsonPropertyName("id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; set; }
    [JsonPropertyName("processed_at")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public string? ProcessedAt { get; set; }
    [JsonPropertyName("content")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<ContentBlock>? Content { get; set; }
    [JsonPropertyName("name")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; set; }
    [JsonPropertyName("input")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Input { get; set; }
    [JsonPropertyName("evaluated_permission")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? EvaluatedPermission { get; set; }
    [JsonPropertyName("tool_use_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ToolUseId { get; set; }
    [JsonPropertyName("custom_tool_use_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CustomToolUseId { get; set; }
    [JsonPropertyName("is_error")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public bool? IsError { get; set; }
    [JsonPropertyName("result")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Result { get; set; }
    [JsonPropertyName("deny_message")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? DenyMessage { get; set; }
    [JsonPropertyName("stop_reason")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public StopReason? StopReason { get; set; }
    [JsonPropertyName("session_thread_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SessionThreadId { get; set; }
    [JsonPropertyName("error")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Error { get; set; }
    /// <summary>Fields this type does not model (kept verbatim).</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>The concatenated text of every <c>text</c> block.</summary>
    [JsonIgnore]
    public string Text => Content is null ? "" : string.Concat(Content.Where(b => b.Type == "text").Select(b => b.Text));
}

/// <summary>A content block: <c>text</c>, <c>image</c>, <c>document</c>, <c>search_result</c>, ...</summary>
public sealed class ContentBlock
{
    [JsonPropertyName("type")] public string Type { get; set; } = "text";
    [JsonPropertyName("text")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Text { get; set; }
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }

    /// <summary>A text block.</summary>
    public static ContentBlock FromText(string text) => new() { Type = "text", Text = text };
}

/// <summary>Why a session went idle: <c>end_turn</c>, <c>requires_action</c> (with the event ids to answer), ...</summary>
public sealed class StopReason
{
    [JsonPropertyName("type")] public string Type { get; set; } = "end_turn";
    [JsonPropertyName("event_ids")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? EventIds { get; set; }
}

/// <summary>Event type names used across Hands.</summary>
public static class EventTypes
{
    public const string UserMessage = "user.message";
    public const string UserInterrupt = "user.interrupt";
    public const string UserToolConfirmation = "user.tool_confirmation";
    public const string UserCustomToolResult = "user.custom_tool_result";
    public const string UserToolResult = "user.tool_result";
    public const string UserDefineOutcome = "user.define_outcome";
    public const string SystemMessage = "system.message";
    public const string AgentMessage = "agent.message";
    public const string AgentThinking = "agent.thinking";
    public const string AgentToolUse = "agent.tool_use";
    public const string AgentToolResult = "agent.tool_result";
    public const string AgentCustomToolUse = "agent.custom_tool_use";
    public const string StatusRunning = "session.status_running";
    public const string StatusIdle = "session.status_idle";
    public const string StatusRescheduled = "session.status_rescheduled";
    public const string StatusTerminated = "session.status_terminated";
    public const string SessionError = "session.error";
    public const string SessionDeleted = "session.deleted";
    public const string SessionUpdated = "session.updated";
    public const string SessionUsage = "session.usage";
    public const string ModelRequestStart = "span.model_request_start";
    public const string ModelRequestEnd = "span.model_request_end";
}
