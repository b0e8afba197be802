using System.CommandLine;
using Hands.Worker.Runner;
using Hands.Worker.Tools;

namespace Hands.Worker.Hosting;

/// <summary>
/// Flags and environment variables of <c>hands-worker</c>, the same as <c>ant beta:worker</c>'s, so an image or a
/// spawn script can swap one for the other. A flag wins over its variable.
/// </summary>
internal static class WorkerCommandLine
{
    public static readonly Option<string?> EnvironmentId = new("--environment-id") { Description = "Environment to serve (env: ANTHROPIC_ENVIRONMENT_ID)" };
    public static readonly Option<string?> EnvironmentKey = new("--environment-key") { Description = "Environment key (env: ANTHROPIC_ENVIRONMENT_KEY; prefer the variable, flags show in process listings)" };
    public static readonly Option<string?> BaseUrl = new("--base-url") { Description = "API base URL (env: ANTHROPIC_BASE_URL; default https://api.anthropic.com)" };
    public static readonly Option<string?> WorkerId = new("--worker-id") { Description = "Worker id sent with polls (env: ANTHROPIC_WORKER_ID)" };
    public static readonly Option<string> Workdir = new("--workdir") { Description = "Directory the file tools are confined to and bash starts in", DefaultValueFactory = _ => "." };
    public static readonly Option<string> MaxIdle = new("--max-idle") { Description = "Idle time after a finished turn before letting the session go (e.g. 60s; 0 = never)", DefaultValueFactory = _ => "60s" };
    public static readonly Option<string> LogFormat = new("--log-format") { Description = "Log format on stderr: text or json", DefaultValueFactory = _ => "text" };
    public static readonly Option<bool> UnrestrictedPaths = new("--unrestricted-paths") { Description = "Let file tools use absolute paths outside the workdir (bash is never confined)" };
    public static readonly Option<string?> StateDir = new("--state-dir") { Description = "Where each session's tool-call journal is kept, so a replacement worker never re-runs a call (env: HANDS_WORKER_STATE_DIR; default /var/lib/hands-worker as root)" };
    public static readonly Option<string?> MemorySyncInterval = new("--memory-sync-interval") { Description = "How often attached memory stores sync back while the session runs (default 15s, at least 5s; the official workers' memorySyncIntervalMs)" };
    public static readonly Option<bool> NoMemorySync = new("--no-memory-sync") { Description = "Turn memory stores off: neither download nor sync them (the official workers' memorySyncIntervalMs: null)" };
    public static readonly Option<string> MemorySyncDeletions = new("--memory-sync-deletions") { Description = "Whether a memory file deleted locally is deleted in its store: enabled, log_only or disabled (memorySyncDeletions)", DefaultValueFactory = _ => "enabled" };
    public static readonly Option<string?> Tools = new("--tools") { Description = "Custom tools manifest (JSON): each tool runs a command with the input JSON on stdin" };

    public static void AddCommon(Command command)
    {
        foreach (var option in new Option[] { EnvironmentId, EnvironmentKey, BaseUrl, Workdir, MaxIdle, LogFormat, UnrestrictedPaths, StateDir, Tools, MemorySyncInterval, NoMemorySync, MemorySyncDeletions })
        {
            command.Options.Add(option);
        }
    }

    public static string? Value(ParseResult parse, Option<string?> option, string variable) =>
        parse.GetValue(option) is { Length: > 0 } v ? v : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } e ? e : null;

    public static EnvironmentWorkerOptions Options(ParseResult parse, WorkerLog log)
    {
        var baseUrl = Value(parse, BaseUrl, "ANTHROPIC_BASE_URL") ?? "https://api.anthropic.com";
        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw new UsageException($"--base-url / ANTHROPIC_BASE_URL: '{baseUrl}' is not an http(s) URL");
        }

        TimeSpan maxIdle;
        try
        {
            maxIdle = Durations.Parse(parse.GetValue(MaxIdle)!);
        }
        catch (FormatException ex)
        {
            throw new UsageException("--max-idle: " + ex.Message);
        }

        var format = parse.GetValue(LogFormat)!;
        if (format is not ("text" or "json"))
        {
            throw new UsageException("--log-format must be text or json");
        }

        var options = new EnvironmentWorkerOptions
        {
            BaseUrl = uri,
            EnvironmentId = Value(parse, EnvironmentId, "ANTHROPIC_ENVIRONMENT_ID") ?? "",
            EnvironmentKey = Value(parse, EnvironmentKey, "ANTHROPIC_ENVIRONMENT_KEY"),
            Workdir = Path.GetFullPath(parse.GetValue(Workdir)!),
            MaxIdle = maxIdle,
            UnrestrictedPaths = parse.GetValue(UnrestrictedPaths),
            Log = log,
        };
        if (parse.GetValue(NoMemorySync))
        {
            options.MemorySyncInterval = null;
        }
        else if (parse.GetValue(MemorySyncInterval) is { Length: > 0 } interval)
        {
            try
            {
                var value = Durations.Parse(interval);
                MemoryStores.SessionMemoryStores.CheckInterval(value);
                options.MemorySyncInterval = value;
            }
            catch (Exception ex) when (ex is FormatException or ArgumentOutOfRangeException)
            {
                throw new UsageException("--memory-sync-interval: " + ex.Message);
            }
        }

        options.MemorySyncDeletions = parse.GetValue(MemorySyncDeletions) switch
        {
            "enabled" => MemoryStores.MemoryDeleteMode.Enabled,
            "log_only" => MemoryStores.MemoryDeleteMode.LogOnly,
            "disabled" => MemoryStores.MemoryDeleteMode.Disabled,
            var other => throw new UsageException($"--memory-sync-deletions must be enabled, log_only or disabled, not '{other}'"),
        };

        if (parse.GetValue(StateDir) is { Length: > 0 } stateDir)
        {
            options.StateDirectory = Path.GetFullPath(stateDir);
        }

        if (Environment.GetEnvironmentVariable("ANTHROPIC_WORKER_ID") is { Length: > 0 } wid)
        {
            options.WorkerId = wid;
        }

        if (parse.GetValue(Tools) is { Length: > 0 } manifestPath)
        {
            CustomToolManifest manifest;
            try
            {
                manifest = CustomToolManifest.Load(manifestPath);
            }
            catch (ArgumentException ex)
            {
                throw new UsageException(ex.Message);
            }

            options.ExtraTools = context => manifest.Tools.Select(t => (IWorkerTool)new CommandTool(t, context));
        }

        if (Forking.ForkAccess.FromEnvironment() is { } fork)
        {
            var manifestTools = options.ExtraTools;
            options.ExtraTools = context => [.. manifestTools?.Invoke(context) ?? [], new Forking.ForkExploreTool(fork, context)];
        }

        if (string.IsNullOrEmpty(options.EnvironmentId))
        {
            throw new UsageException("--environment-id (or ANTHROPIC_ENVIRONMENT_ID) is required");
        }

        return options;
    }
}

/// <summary>Bad flags or settings: one line on stderr, exit code 2.</summary>
internal sealed class UsageException : Exception
{
    public UsageException() { }

    public UsageException(string message) : base(message) { }

    public UsageException(string message, Exception innerException) : base(message, innerException) { }
}
