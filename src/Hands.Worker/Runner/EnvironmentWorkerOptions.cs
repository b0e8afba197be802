using System.Diagnostics;
using Hands.Protocol.Client;
using Hands.Worker.Hosting;
using Hands.Worker.Tools;

namespace Hands.Worker.Runner;

/// <summary>Settings of <see cref="EnvironmentWorker"/>; the names follow <c>ant beta:worker</c> and the SDK workers.</summary>
public sealed class EnvironmentWorkerOptions
{
    /// <summary><c>ANTHROPIC_BASE_URL</c>; the hosted service by default.</summary>
    public Uri BaseUrl { get; set; } = new("https://api.anthropic.com");

    /// <summary><c>ANTHROPIC_ENVIRONMENT_ID</c>.</summary>
    public string EnvironmentId { get; set; } = "";

    /// <summary><c>ANTHROPIC_ENVIRONMENT_KEY</c>; optional for one item when its work secret carries a sessions token.</summary>
    public string? EnvironmentKey { get; set; }

    /// <summary>Directory the file tools are confined to and bash starts in.</summary>
    public string Workdir { get; set; } = ".";

    /// <summary>Time after a finished turn before the worker lets the session go; zero or less waits forever.</summary>
    public TimeSpan MaxIdle { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Let the file tools take absolute paths outside the workdir (bash is never confined).</summary>
    public bool UnrestrictedPaths { get; set; }

    /// <summary><c>Anthropic-Worker-ID</c> of polls; defaults to <c>HOST-&lt;12 hex&gt;</c>.</summary>
    public string WorkerId { get; set; } = $"{Environment.MachineName}-{Guid.NewGuid():N}"[..Math.Min(Environment.MachineName.Length + 13, 64)];

    /// <summary>Size cap of <c>read</c> and <c>edit</c>; null disables it.</summary>
    public long? MaxFileBytes { get; set; } = ToolContext.DefaultMaxFileBytes;

    /// <summary>Extra tools besides the built-in toolset (custom tools from a manifest, or your own).</summary>
    public Func<ToolContext, IEnumerable<IWorkerTool>>? ExtraTools { get; set; }

    /// <summary>
    /// How often the session's memory stores sync back while it runs (checked after each tool call; plus a final sync
    /// at a clean end and a bounded push-only flush in every teardown). Default 15 s, at least 5 s. Null turns memory
    /// off: stores are neither downloaded nor synced (the official workers' <c>memorySyncIntervalMs: null</c>).
    /// </summary>
    public TimeSpan? MemorySyncInterval { get; set; } = MemoryStores.SessionMemoryStores.DefaultSyncInterval;

    /// <summary>Whether a memory file deleted locally is deleted in its store (<c>memorySyncDeletions</c>).</summary>
    public MemoryStores.MemoryDeleteMode MemorySyncDeletions { get; set; } = MemoryStores.MemoryDeleteMode.Enabled;

    public WorkerLog Log { get; set; } = new();

    /// <summary>
    /// Where the worker keeps what must outlive it: each session's tool-call journal (<c>journal/</c>), which makes a
    /// replacement worker in the same sandbox answer rather than re-run a call its predecessor started. Default:
    /// <c>HANDS_WORKER_STATE_DIR</c>, else <c>/var/lib/hands-worker</c> as root (in a sandbox), else
    /// <c>$XDG_STATE_HOME/hands-worker</c> (<c>~/.local/state/hands-worker</c>).
    /// </summary>
    public string StateDirectory { get; set; } = DefaultStateDirectory();

    /// <summary>The default <see cref="StateDirectory"/>.</summary>
    public static string DefaultStateDirectory()
    {
        if (Environment.GetEnvironmentVariable("HANDS_WORKER_STATE_DIR") is { Length: > 0 } configured)
        {
            return Path.GetFullPath(configured);
        }

        if (OperatingSystem.IsLinux() && Environment.UserName == "root")
        {
            return "/var/lib/hands-worker";
        }

        var stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        return Path.Combine(stateHome, "hands-worker");
    }

    /// <summary>
    /// Tracing: the official SDK's <c>ANTHROPIC_OPEN_TELEMETRY*</c> settings, for the worker's spans and its clients'.
    /// The spans are exported only when a tracer provider listens to <see cref="Hands.Common.HandsTelemetry.SourceName"/>
    /// (<c>hands-worker</c> starts one when <c>OTEL_*</c> asks for it: docs/observability.md).
    /// </summary>
    public ManagedAgentsTracingOptions Tracing { get; set; } = ManagedAgentsTracingOptions.FromEnvironment();

    /// <summary>
    /// The parent of the work span <see cref="EnvironmentWorker.HandleItemAsync"/> makes; default means the current
    /// activity. <c>hands-worker run</c> takes it from <c>TRACEPARENT</c>/<c>TRACESTATE</c> (a Hands extension).
    /// </summary>
    public ActivityContext ParentContext { get; set; }

    /// <summary>The clock the worker's waits run on (poll backoff and idle polls, lease heartbeats, stop timeouts); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}
