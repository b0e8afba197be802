using System.CommandLine;
using Hands.Cli.Configuration;
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

    /// <summary>Non-dumpable before the credentials are read (<see cref="CredentialHolder"/>).</summary>
    public static void BecomeNonDumpable() => CredentialHolder.BecomeNonDumpable();

    public static void AddTo(Command command)
    {
        command.Options.Add(Concurrency);
        command.Options.Add(Image);
        command.Options.Add(SandboxPool);
    }

    /// <summary>The options from the reference integration's variables (<see cref="OrchestratorEnvironment"/>), with this command's flags winning.</summary>
    public static OrchestratorOptions Build(ParseResult parse, ILogger logger) =>
        OrchestratorEnvironment.Build(logger, CliContext.LocalDefault,
            new OrchestratorEnvironment.Overrides(parse.GetValue(Concurrency), parse.GetValue(Image), parse.GetValue(SandboxPool)));

    /// <summary><c>HANDS_FORK_ACCESS</c>: none (default), tool or bash.</summary>
    public static WorkerForkAccess ForkAccess() => OrchestratorEnvironment.ForkAccess();

    public static ManagedAgentsClient EnvironmentClient(OrchestratorOptions options) => EnvironmentClient(options.BaseUrl, options.EnvironmentKey);

    /// <summary>A client that authenticates with an environment key (work queue and stats).</summary>
    public static ManagedAgentsClient EnvironmentClient(Uri baseUrl, string environmentKey) => OrchestratorEnvironment.EnvironmentClient(baseUrl, environmentKey);

    /// <summary><c>JANITOR_SECONDS</c>: how often session sandboxes are swept (default 60 s).</summary>
    public static TimeSpan JanitorInterval() => OrchestratorEnvironment.JanitorInterval();

    public static ILoggerFactory ConsoleLogging() => LoggerFactory.Create(ConfigureLogging);

    public static void ConfigureLogging(ILoggingBuilder builder) => WebhookMode.ConfigureLogging(builder);
}
