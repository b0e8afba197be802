using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>Body of <c>POST /api/v1/processes</c>: argv (no shell), env overlaid on the base environment.</summary>
public sealed class StartProcessRequest
{
    [JsonPropertyName("command")] public string Command { get; set; } = "";
    [JsonPropertyName("args")] public List<string>? Args { get; set; }
    [JsonPropertyName("env")] public Dictionary<string, string>? Env { get; set; }
    [JsonPropertyName("working_dir")] public string? WorkingDir { get; set; }
    /// <summary>A user name, UID, or "uid:gid" string.</summary>
    [JsonPropertyName("user")] public string? User { get; set; }
    [JsonPropertyName("stdin_mode")] public string? StdinMode { get; set; }
    [JsonPropertyName("stdout_mode")] public string? StdoutMode { get; set; }
    [JsonPropertyName("stderr_mode")] public string? StderrMode { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
}

/// <summary>Body of <c>POST /api/v1/processes/run</c>: runs to completion, streaming output; <see cref="Timeout"/> in seconds.</summary>
public sealed class RunProcessRequest
{
    [JsonPropertyName("command")] public string Command { get; set; } = "";
    [JsonPropertyName("args")] public List<string>? Args { get; set; }
    [JsonPropertyName("env")] public Dictionary<string, string>? Env { get; set; }
    [JsonPropertyName("working_dir")] public string? WorkingDir { get; set; }
    [JsonPropertyName("user")] public string? User { get; set; }
    [JsonPropertyName("timeout")] public double? Timeout { get; set; }
}

/// <summary>A process as the sandbox daemon reports it.</summary>
public sealed class ProcessInfo
{
    [JsonPropertyName("handle")] public long? Handle { get; set; }
    [JsonPropertyName("pid")] public int Pid { get; set; }
    /// <summary><c>running</c>, <c>exited</c>, <c>signaled</c> or <c>oom_killed</c>.</summary>
    [JsonPropertyName("status")] public string Status { get; set; } = "";
    [JsonPropertyName("exit_code")] public int? ExitCode { get; set; }
    [JsonPropertyName("signal")] public int? Signal { get; set; }
    [JsonPropertyName("oom_killed")] public bool OomKilled { get; set; }
    [JsonPropertyName("stdin_writable")] public bool StdinWritable { get; set; }
    [JsonPropertyName("command")] public string? Command { get; set; }
    [JsonPropertyName("args")] public List<string> Args { get; set; } = [];
    [JsonPropertyName("started_at")] public JsonElement? StartedAtRaw { get; set; }
    [JsonPropertyName("ended_at")] public JsonElement? EndedAtRaw { get; set; }
    [JsonPropertyName("managed")] public JsonElement? Managed { get; set; }
}

/// <summary><c>GET /api/v1/processes</c>.</summary>
public sealed class ProcessList
{
    [JsonPropertyName("processes")] public List<ProcessInfo> Processes { get; set; } = [];
}

/// <summary>Captured output: <c>GET /api/v1/processes/{p}/stdout|stderr|output</c>.</summary>
public sealed class ProcessOutput
{
    [JsonPropertyName("pid")] public int Pid { get; set; }
    [JsonPropertyName("lines")] public List<string> Lines { get; set; } = [];
    [JsonPropertyName("line_count")] public int LineCount { get; set; }
}

/// <summary>One frame of a run or follow stream: started, an output line, or the exit.</summary>
public sealed class ProcessEvent
{
    [JsonPropertyName("handle")] public long? Handle { get; set; }
    [JsonPropertyName("pid")] public int? Pid { get; set; }
    [JsonPropertyName("started_at")] public JsonElement? StartedAt { get; set; }
    [JsonPropertyName("line")] public string? Line { get; set; }
    [JsonPropertyName("timestamp")] public JsonElement? Timestamp { get; set; }
    [JsonPropertyName("stream")] public string? Stream { get; set; }
    [JsonPropertyName("exit_code")] public int? ExitCode { get; set; }
    [JsonPropertyName("signal")] public int? Signal { get; set; }
    [JsonPropertyName("oom_killed")] public bool? OomKilled { get; set; }

    [JsonIgnore] public bool IsStarted => Pid is not null && Line is null && ExitCode is null && Signal is null;
    [JsonIgnore] public bool IsOutput => Line is not null;
    [JsonIgnore] public bool IsExit => ExitCode is not null || Signal is not null;
}

/// <summary>The result of <see cref="Client.SandboxProxyClient.RunAsync"/>: output lines joined by newlines, and the exit.</summary>
public sealed record CommandResult(int ExitCode, string Stdout, string Stderr, int? Signal, int? Pid)
{
    /// <summary>The sandbox's OOM killer killed it (its SIGKILL was for memory), as the daemon's exit frame says.</summary>
    public bool OomKilled { get; init; }
}

/// <summary>A directory listing entry (<c>GET /api/v1/files/list</c>).</summary>
public sealed class FileEntry
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("is_dir")] public bool IsDir { get; set; }
    [JsonPropertyName("size")] public long? Size { get; set; }
    [JsonPropertyName("modified_at")] public JsonElement? ModifiedAtRaw { get; set; }
}

/// <summary><c>GET /api/v1/files/list</c>.</summary>
public sealed class DirectoryListing
{
    [JsonPropertyName("path")] public string Path { get; set; } = "";
    [JsonPropertyName("entries")] public List<FileEntry> Entries { get; set; } = [];
}

/// <summary>The daemon's error body: <c>{"error":"...","code":"NOT_FOUND"}</c>.</summary>
public sealed class ProxyError
{
    [JsonPropertyName("error")] public string? Error { get; set; }
    [JsonPropertyName("code")] public string? Code { get; set; }
}
