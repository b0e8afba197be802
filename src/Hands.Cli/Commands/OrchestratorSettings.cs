using System.CommandLine;
using Hands.Cli.Configuration;
using Hands.Hosting;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Cli.Commands;

/// <summary>
/// What every orchestrator verb shares: its options from the reference integration's variables (flags win), the
/// environment-key client, the sandbox provider, and a console logger.
/// </summary>
internal static class OrchestratorSettings
{
    public static readonly Option<int?> Concurrency = new("--concurrency")
    {
        Description = "Most sessions spun up at once (default: $HANDS_MAX_CONCURRENT_SPAWNS, else 16; 1 = one at a time like the reference orchestrator)",
    };

    public static readonly Option<string?> Image = new("--image") { Description = "Image of session sandboxes (default: $SANDBOX_IMAGE_NAME, else the provider's)" };

    public static readonly Option<string?> SandboxPool = new("--sandbox-pool")
    {
        Description = "Id of a warm pool to claim session sandboxes from, falling back to a create when it has no room (default: $HANDS_SANDBOX_POOL; none)",
    };

    /// <summary>
    /// For the commands that hold an environment's credentials (poll, webhook, the receiver in its sandbox): non-dumpable
    /// before they are read, so nothing of the same user — the receiver's sandbox root included, which has no
    /// <c>CAP_SYS_PTRACE</c> — reads them out of <c>/proc</c>.
    /// </summary>
    public static void BecomeNonDumpable()
    {
        if (OperatingSystem.IsLinux() && !Hands.Worker.Hosting.ProcessHardening.TryBecomeNonDumpable(out var errno))
        {
            throw new CliException($"could not make this process non-dumpable (errno {errno}); refusing to hold the environment's credentials");
        }
    }

    public static void AddTo(Command command)
    {
        command.Options.Add(Concurrency);
        command.Options.Add(Image);
        command.Options.Add(SandboxPool);
    }

    public static OrchestratorOptions Build(ParseResult parse, ILogger logger) => new()
    {
        EnvironmentId = Settings.Require("ANTHROPIC_ENVIRONMENT_ID", "the id of the self_hosted environment to serve (hands env create NAME)"),
        EnvironmentKey = Settings.Require("ANTHROPIC_ENVIRONMENT_KEY", "the environment's key (hands env key ENVIRONMENT_ID), never the organization API key"),
        BaseUrl = Settings.Url("ANTHROPIC_BASE_URL", CliContext.LocalDefault),
        WorkerBaseUrl = Settings.Get("HANDS_WORKER_BASE_URL") is not null ? Settings.Url("HANDS_WORKER_BASE_URL", "") : null,
        Image = parse.GetValue(Image) ?? Settings.Get("SANDBOX_IMAGE_NAME"),
        SandboxPool = parse.GetValue(SandboxPool) ?? (Settings.Get("HANDS_SANDBOX_POOL") is { Length: > 0 } pool ? pool : null),
        SandboxTimeoutSeconds = Settings.Int("SANDBOX_TIMEOUT_SECONDS", 3600, 0, 30 * 86400),
        WorkerMaxIdle = TimeSpan.FromSeconds(Settings.Int("RUNNER_MAX_IDLE_SECONDS", 300, 1, 86400)),
        ResumeSuspendedSessions = Settings.Bool("RESUME_SUSPENDED_SESSIONS", false),
        ForkAccess = ForkAccess(),
        RestrictWorkerApiRoutes = Settings.Get("HANDS_WORKER_API_ROUTES")?.ToLowerInvariant() switch
        {
            null or "" or "any" => false,
            "session" => true,
            var other => throw new CliException($"HANDS_WORKER_API_ROUTES: '{other}' is not 'any' (default) or 'session'."),
        },
        WorkerOtlpEndpoint = Settings.Get("HANDS_WORKER_OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } ? Settings.Url("HANDS_WORKER_OTEL_EXPORTER_OTLP_ENDPOINT", "") : null,
        WorkerOtlpProtocol = Settings.Get("HANDS_WORKER_OTEL_EXPORTER_OTLP_PROTOCOL") is { Length: > 0 } protocol ? protocol : null,
        MaxConcurrentSpawns = parse.GetValue(Concurrency) is { } k ? Math.Max(1, k) : Settings.Int("HANDS_MAX_CONCURRENT_SPAWNS", 16, 1, 1024),
        Logger = logger,
    };

    /// <summary><c>HANDS_FORK_ACCESS</c>: none (default), tool or bash.</summary>
    public static WorkerForkAccess ForkAccess() => Settings.Get("HANDS_FORK_ACCESS")?.ToLowerInvariant() switch
    {
        null or "" or "none" => WorkerForkAccess.None,
        "tool" => WorkerForkAccess.Tool,
        "bash" => WorkerForkAccess.Bash,
        var other => throw new CliException($"HANDS_FORK_ACCESS is none, tool or bash, not '{other}'"),
    };

    public static ManagedAgentsClient EnvironmentClient(OrchestratorOptions options) => EnvironmentClient(options.BaseUrl, options.EnvironmentKey);

    /// <summary>A client that authenticates with an environment key (work queue and stats).</summary>
    public static ManagedAgentsClient EnvironmentClient(Uri baseUrl, string environmentKey) =>
        new(ManagedAgentsCredential.Bearer(environmentKey), new ManagedAgentsClientOptions { BaseUrl = baseUrl });

    /// <summary><c>JANITOR_SECONDS</c>: how often session sandboxes are swept (default 60 s).</summary>
    public static TimeSpan JanitorInterval() => TimeSpan.FromSeconds(Settings.Int("JANITOR_SECONDS", 60, 5, 86400));

    public static ILoggerFactory ConsoleLogging() => LoggerFactory.Create(ConfigureLogging);

    public static void ConfigureLogging(ILoggingBuilder builder) =>
        builder.AddHandsConsole().SetMinimumLevel(LogLevel.Information)
            .AddFilter("Microsoft", LogLevel.Warning).AddFilter("System.Net.Http", LogLevel.Warning);
}
