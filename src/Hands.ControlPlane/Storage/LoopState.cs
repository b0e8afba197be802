using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.ControlPlane.Storage;

/// <summary>
/// Where a session's agent loop stands, persisted with the session so that a restart resumes it exactly:
/// the next turn to play, the step within the running turn, the tool call being waited on, and the results so far.
/// </summary>
public sealed class LoopState
{
    [JsonPropertyName("next_turn")] public int NextTurn { get; set; }
    [JsonPropertyName("in_turn")] public bool InTurn { get; set; }
    [JsonPropertyName("step")] public int Step { get; set; }
    /// <summary>The <c>agent.tool_use</c> / <c>agent.custom_tool_use</c> event id awaiting an answer.</summary>
    [JsonPropertyName("awaiting")] public string? Awaiting { get; set; }
    [JsonPropertyName("awaiting_custom")] public bool AwaitingCustom { get; set; }
    /// <summary>True while an <c>ask</c> call waits for <c>user.tool_confirmation</c>.</summary>
    [JsonPropertyName("awaiting_confirmation")] public bool AwaitingConfirmation { get; set; }
    [JsonPropertyName("results")] public List<StepResult> Results { get; set; } = [];
    /// <summary>User messages received while a turn was running; each plays a turn when the current one ends.</summary>
    [JsonPropertyName("queued_messages")] public int QueuedMessages { get; set; }

    public string ToJson() => JsonSerializer.Serialize(this, LoopJsonContext.Default.LoopState);

    public static LoopState Parse(string json) => JsonSerializer.Deserialize(json, LoopJsonContext.Default.LoopState) ?? new LoopState();
}

/// <summary>The outcome of one tool step, for <c>{{results[i].text}}</c> templates.</summary>
public sealed class StepResult
{
    [JsonPropertyName("text")] public string Text { get; set; } = "";
    [JsonPropertyName("is_error")] public bool IsError { get; set; }
}

[JsonSerializable(typeof(LoopState))]
internal sealed partial class LoopJsonContext : JsonSerializerContext;
