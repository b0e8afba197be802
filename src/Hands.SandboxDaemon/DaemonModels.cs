using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.SandboxDaemon;

/// <summary>Body of <c>POST /api/v1/processes</c> and <c>/processes/run</c>, read leniently (the user may be a string or an object).</summary>
public sealed class StartRequest
{
    [JsonPropertyName("command")] public string? Command { get; set; }
    [JsonPropertyName("args")] public List<string>? Args { get; set; }
    [JsonPropertyName("env")] public Dictionary<string, string>? Env { get; set; }
    [JsonPropertyName("working_dir")] public string? WorkingDir { get; set; }
    [JsonPropertyName("user")] public JsonElement? User { get; set; }
    [JsonPropertyName("stdin_mode")] public string? StdinMode { get; set; }
    [JsonPropertyName("stdout_mode")] public string? StdoutMode { get; set; }
    [JsonPropertyName("stderr_mode")] public string? StderrMode { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    /// <summary>Seconds (run only); the process is killed when it is still running then.</summary>
    [JsonPropertyName("timeout")] public double? Timeout { get; set; }
}

/// <summary>A process as the API reports it.</summary>
public sealed class ProcessInfoBody
{
    [JsonPropertyName("handle")] public long Handle { get; set; }
    [JsonPropertyName("pid")] public int Pid { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = "running";
    [JsonPropertyName("exit_code")] public int? ExitCode { get; set; }
    [JsonPropertyName("signal")] public int? Signal { get; set; }
    [JsonPropertyName("oom_killed")] public bool OomKilled { get; set; }
    [JsonPropertyName("stdin_writable")] public bool StdinWritable { get; set; }
    [JsonPropertyName("command")] public string Command { get; set; } = "";
    [JsonPropertyName("args")] public List<string> Args { get; set; } = [];
    [JsonPropertyName("started_at")] public long StartedAt { get; set; }
    [JsonPropertyName("ended_at")] public long? EndedAt { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
}

public sealed class ProcessListBody
{
    [JsonPropertyName("processes")] public List<ProcessInfoBody> Processes { get; set; } = [];
}

public sealed class OutputBody
{
    [JsonPropertyName("pid")] public int Pid { get; set; }
    [JsonPropertyName("lines")] public List<string> Lines { get; set; } = [];
    [JsonPropertyName("line_count")] public int LineCount { get; set; }
}

/// <summary>First frame of a run stream.</summary>
public sealed class RunStartedFrame
{
    [JsonPropertyName("handle")] public long Handle { get; set; }
    [JsonPropertyName("pid")] public int Pid { get; set; }
    [JsonPropertyName("started_at")] public long StartedAt { get; set; }
}

/// <summary>An output line in a run or follow stream; <see cref="Stream"/> is omitted on single-stream follows.</summary>
public sealed class OutputFrame
{
    [JsonPropertyName("line")] public string Line { get; set; } = "";
    [JsonPropertyName("timestamp")] public long Timestamp { get; set; }
    [JsonPropertyName("stream")] public string? Stream { get; set; }
}

/// <summary>Last frame of a run stream: an exit code, or the signal that ended the process.</summary>
public sealed class ExitFrame
{
    [JsonPropertyName("exit_code")] public int? ExitCode { get; set; }
    [JsonPropertyName("signal")] public int? Signal { get; set; }
    [JsonPropertyName("oom_killed")] public bool? OomKilled { get; set; }
}

public sealed class SignalRequest
{
    [JsonPropertyName("signal")] public int? Signal { get; set; }
}

public sealed class SuccessBody
{
    [JsonPropertyName("success")] public bool Success { get; set; } = true;
}

public sealed class ErrorBody
{
    [JsonPropertyName("error")] public string Error { get; set; } = "";
    [JsonPropertyName("code")] public string? Code { get; set; }
}

public sealed class HealthResponse
{
    [JsonPropertyName("healthy")] public bool Healthy { get; set; }
}

public sealed class InfoResponse
{
    [JsonPropertyName("version")] public string Version { get; set; } = "";
    [JsonPropertyName("uptime_secs")] public long UptimeSecs { get; set; }
    [JsonPropertyName("running_processes")] public int RunningProcesses { get; set; }
    [JsonPropertyName("total_processes")] public int TotalProcesses { get; set; }
}

public sealed class ListingBody
{
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("entries")] public List<EntryBody> Entries { get; set; } = [];
}

public sealed class EntryBody
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("is_dir")] public bool IsDir { get; set; }
    [JsonPropertyName("size")] public long? Size { get; set; }
    [JsonPropertyName("modified_at")] public long? ModifiedAt { get; set; }
}

public sealed class EmptyBody;

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(StartRequest))]
[JsonSerializable(typeof(ProcessInfoBody))]
[JsonSerializable(typeof(ProcessListBody))]
[JsonSerializable(typeof(OutputBody))]
[JsonSerializable(typeof(RunStartedFrame))]
[JsonSerializable(typeof(OutputFrame))]
[JsonSerializable(typeof(ExitFrame))]
[JsonSerializable(typeof(SignalRequest))]
[JsonSerializable(typeof(SuccessBody))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(HealthResponse))]
[JsonSerializable(typeof(InfoResponse))]
[JsonSerializable(typeof(ListingBody))]
[JsonSerializable(typeof(EmptyBody))]
public sealed partial class DaemonJsonContext : JsonSerializerContext;
