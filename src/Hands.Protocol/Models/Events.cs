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
    /// <summary>
    /// <c>result</c> as sent: a string on <c>user.tool_confirmation</c> (<c>allow</c>/<c>deny</c>), an object on
    /// <c>workflow_run.status_ended</c> (SDK 1.14.0). Kept as JSON so that neither shape fails to read.
    /// </summary>
    [JsonPropertyName("result")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? ResultValue { get; set; }
    /// <summary><see cref="ResultValue"/> when it is a string (a tool confirmation's <c>allow</c> or <c>deny</c>), else null.</summary>
    [JsonIgnore]
    public string? Result
    {
        get => ResultValue is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;
        set => ResultValue = value is null ? null : JsonSerializer.SerializeToElement(value, Json.ProtocolJsonContext.Default.String);
    }
    [JsonPropertyName("deny_message")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? DenyMessage { get; set; }
    [JsonPropertyName("stop_reason")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public StopReason? StopReason { get; set; }
    /// <summary>
    /// <c>session.status_idle</c>: structured information about why the session stopped (a refusal's <c>category</c> and
    /// <c>explanation</c>), JSON <c>null</c> when there is nothing more to report; left out (undefined) on other types.
    /// </summary>
    [JsonPropertyName("stop_details")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public JsonElement StopDetails { get; set; }
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

/// <summary>
/// Why a session went idle: <c>end_turn</c>, <c>requires_action</c> (with the event ids to answer),
/// <c>retries_exhausted</c>, <c>budget_reached</c>, <c>refusal</c> (its details ride the event's <c>stop_details</c>), and
/// whatever a newer service adds (kept in <see cref="Extra"/>).
/// </summary>
public sealed class StopReason
{
    [JsonPropertyName("type")] public string Type { get; set; } = "end_turn";
    [JsonPropertyName("event_ids")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? EventIds { get; set; }
    /// <summary>Fields this type does not model (kept verbatim).</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; set; }
}

/// <summary>Stop reasons and <c>session.error</c> types Hands acts on or renders.</summary>
public static class StopReasons
{
    public const string EndTurn = "end_turn";
    public const string RequiresAction = "requires_action";
    public const string RetriesExhausted = "retries_exhausted";
    public const string BudgetReached = "budget_reached";
    public const string Refusal = "refusal";
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
    public const string ThreadCreated = "session.thread_created";
    /// <summary>The prefix of the multi-agent workflow events (<c>workflow_run.created</c>, <c>.status_running</c>, <c>.status_idle</c>, <c>.status_ended</c>, <c>.error</c>, <c>.phase_started</c>, <c>.phase_ended</c>).</summary>
    public const string WorkflowRunPrefix = "workflow_run.";
}
