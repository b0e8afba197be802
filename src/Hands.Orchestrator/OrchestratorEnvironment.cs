using System.Globalization;
using Hands.Protocol.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// Reads an orchestrator's settings from the reference integration's environment variables, with errors that name the
/// variable and the rule. Shared by <c>hands poll</c>/<c>hands webhook</c> (whose flags override some of them) and the
/// native <c>hands-receiver</c>, which has no flags beyond <c>--urls</c> and takes everything else from here.
/// </summary>
public static class OrchestratorEnvironment
{
    /// <summary>Flag values that win over their variables (null: the variable decides).</summary>
    /// <param name="Concurrency"><c>--concurrency</c> (over <c>HANDS_MAX_CONCURRENT_SPAWNS</c>).</param>
    /// <param name="Image"><c>--image</c> (over <c>SANDBOX_IMAGE_NAME</c>).</param>
    /// <param name="SandboxPool"><c>--sandbox-pool</c> (over <c>HANDS_SANDBOX_POOL</c>).</param>
    public sealed record Overrides(int? Concurrency = null, string? Image = null, string? SandboxPool = null);

    /// <summary>The variable's value; null when unset or empty.</summary>
    public static string? Get(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    /// <summary>The variable's value, or an error saying what it should hold.</summary>
    public static string Require(string name, string what) =>
        Get(name) ?? throw new OrchestratorException($"{name} is not set: {what}.");

    /// <summary>A whole number within [<paramref name="min"/>, <paramref name="max"/>], or <paramref name="fallback"/> when unset.</summary>
    public static int Int(string name, int fallback, int min, int max)
    {
        if (Get(name) is not { } text)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new OrchestratorException($"{name}: '{text}' is not a whole number from {min} to {max}.");
    }

    /// <summary>true/false (also 1/0, yes/no, on/off), or <paramref name="fallback"/> when unset.</summary>
    public static bool Bool(string name, bool fallback) => Get(name)?.ToLowerInvariant() switch
    {
        null => fallback,
        "1" or "true" or "yes" or "on" => true,
        "0" or "false" or "no" or "off" => false,
        var other => throw new OrchestratorException($"{name}: '{other}' is not true or false."),
    };

    /// <summary>An absolute http(s) URL, or <paramref name="fallback"/> when unset.</summary>
    public static Uri Url(string name, string fallback)
    {
        var text = Get(name) ?? fallback;
        return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new OrchestratorException($"{name}: '{text}' is not an absolute http(s) URL.");
    }

    /// <summary>The orchestrator's options from the environment; <paramref name="defaultBaseUrl"/> when <c>ANTHROPIC_BASE_URL</c> is unset.</summary>
    public static OrchestratorOptions Build(ILogger logger, string defaultBaseUrl, Overrides? overrides = null)
    {
        overrides ??= new Overrides();
        return new OrchestratorOptions
        {
            EnvironmentId = Require("ANTHROPIC_ENVIRONMENT_ID", "the id of the self_hosted environment to serve (hands env create NAME)"),
            EnvironmentKey = Require("ANTHROPIC_ENVIRONMENT_KEY", "the environment's key (hands env key ENVIRONMENT_ID), never the organization API key"),
            BaseUrl = Url("ANTHROPIC_BASE_URL", defaultBaseUrl),
            WorkerBaseUrl = Get("HANDS_WORKER_BASE_URL") is not null ? Url("HANDS_WORKER_BASE_URL", "") : null,
            Image = overrides.Image ?? Get("SANDBOX_IMAGE_NAME"),
            SandboxPool = overrides.SandboxPool ?? (Get("HANDS_SANDBOX_POOL") is { Length: > 0 } pool ? pool : null),
            SandboxTimeoutSeconds = Int("SANDBOX_TIMEOUT_SECONDS", 3600, 0, 30 * 86400),
            WorkerMaxIdle = TimeSpan.FromSeconds(Int("RUNNER_MAX_IDLE_SECONDS", 300, 1, 86400)),
            ResumeSuspendedSessions = Bool("RESUME_SUSPENDED_SESSIONS", false),
            ForkAccess = ForkAccess(),
            RestrictWorkerApiRoutes = Get("HANDS_WORKER_API_ROUTES")?.ToLowerInvariant() switch
            {
                null or "" or "any" => false,
                "session" => true,
                var other => throw new OrchestratorException($"HANDS_WORKER_API_ROUTES: '{other}' is not 'any' (default) or 'session'."),
            },
            WorkerOtlpEndpoint = Get("HANDS_WORKER_OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 } ? Url("HANDS_WORKER_OTEL_EXPORTER_OTLP_ENDPOINT", "") : null,
            WorkerOtlpProtocol = Get("HANDS_WORKER_OTEL_EXPORTER_OTLP_PROTOCOL") is { Length: > 0 } protocol ? protocol : null,
            MaxConcurrentSpawns = overrides.Concurrency is { } k ? Math.Max(1, k) : Int("HANDS_MAX_CONCURRENT_SPAWNS", 16, 1, 1024),
            Logger = logger,
        };
    }

    /// <summary><c>HANDS_FORK_ACCESS</c>: none (default), tool or bash.</summary>
    public static WorkerForkAccess ForkAccess() => Get("HANDS_FORK_ACCESS")?.ToLowerInvariant() switch
    {
        null or "" or "none" => WorkerForkAccess.None,
        "tool" => WorkerForkAccess.Tool,
        "bash" => WorkerForkAccess.Bash,
        var other => throw new OrchestratorException($"HANDS_FORK_ACCESS is none, tool or bash, not '{other}'"),
    };

    /// <summary><c>JANITOR_SECONDS</c>: how often session sandboxes are swept (default 60 s).</summary>
    public static TimeSpan JanitorInterval() => TimeSpan.FromSeconds(Int("JANITOR_SECONDS", 60, 5, 86400));

    /// <summary><c>WEBHOOK_DRAIN_SECONDS</c>: the webhook mode's fallback drain interval (default 30 s).</summary>
    public static TimeSpan WebhookDrainInterval() => TimeSpan.FromSeconds(Int("WEBHOOK_DRAIN_SECONDS", 30, 1, 86400));

    /// <summary>A client that authenticates with an environment key (work queue and stats).</summary>
    public static ManagedAgentsClient EnvironmentClient(Uri baseUrl, string environmentKey) =>
        new(ManagedAgentsCredential.Bearer(environmentKey), new ManagedAgentsClientOptions { BaseUrl = baseUrl });
}
