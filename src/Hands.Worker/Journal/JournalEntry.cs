using System.Text.Json.Serialization;
using Hands.Protocol.Models;

namespace Hands.Worker.Journal;

/// <summary>One line of a session's tool-call journal (JSON, one object per line).</summary>
internal sealed class JournalEntry
{
    /// <summary>The tool call's event id.</summary>
    [JsonPropertyName("call")] public string Call { get; set; } = "";

    /// <summary><c>started</c>, <c>process</c>, <c>finished</c> or <c>posted</c>.</summary>
    [JsonPropertyName("state")] public string State { get; set; } = "";

    /// <summary>On <c>started</c>: the tool's name.</summary>
    [JsonPropertyName("tool")] public string? Tool { get; set; }

    /// <summary>On <c>started</c>: when the call began, in clock ticks since boot (the unit of a process's start time).</summary>
    [JsonPropertyName("since")] public long? Since { get; set; }

    /// <summary>On <c>process</c>: a helper process the call runs in (the bash session, a custom tool's command).</summary>
    [JsonPropertyName("pid")] public int? Pid { get; set; }

    /// <summary>On <c>process</c>: that process's start time (clock ticks since boot), so a reused pid is never killed.</summary>
    [JsonPropertyName("pid_start")] public long? PidStart { get; set; }

    /// <summary>On <c>finished</c>: whether the result is an error.</summary>
    [JsonPropertyName("is_error")] public bool? IsError { get; set; }

    /// <summary>On <c>finished</c>: the result's content, posted as computed if the worker dies before posting it.</summary>
    [JsonPropertyName("content")] public List<ContentBlock>? Content { get; set; }

    /// <summary>When it was written (Unix ms).</summary>
    [JsonPropertyName("at")] public long At { get; set; }
}

/// <summary>The states a journal line records.</summary>
internal static class JournalStates
{
    public const string Started = "started";
    public const string Process = "process";
    public const string Finished = "finished";
    public const string Posted = "posted";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(JournalEntry))]
internal sealed partial class JournalJsonContext : JsonSerializerContext;
