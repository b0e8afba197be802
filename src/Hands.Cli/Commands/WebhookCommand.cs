using System.CommandLine;
using Hands.Cli.Configuration;
using Hands.Orchestrator;
using Microsoft.Extensions.Logging;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands webhook --urls URL</c>: the webhook orchestrator. Verifies each delivery, drains the queue in the
/// background on <c>session.status_run_started</c>, and drains every <c>WEBHOOK_DRAIN_SECONDS</c> as a fallback.
/// </summary>
internal static class WebhookCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Where to listen", DefaultValueFactory = _ => "http://127.0.0.1:5051" };
        var command = new Command("webhook", "Serve an environment's work queue on webhook deliveries (session.status_run_started)") { urls };
        OrchestratorSettings.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            OrchestratorSettings.BecomeNonDumpable();
            using var logging = OrchestratorSettings.ConsoleLogging();
            var logger = logging.CreateLogger("hands.webhook");
            var options = OrchestratorSettings.Build(parse, logger);
            var signingKey = Settings.Require("ANTHROPIC_WEBHOOK_SIGNING_KEY", "the endpoint's signing secret (whsec_...), shown once when the endpoint was registered");
            var url = Uri.TryCreate(parse.GetValue(urls), UriKind.Absolute, out var u) && u.Scheme == "http"
                ? u : throw new CliException($"--urls: '{parse.GetValue(urls)}' is not an http:// URL.");
            using var held = OrchestratorLock.Acquire(options.EnvironmentId, "webhook");
            using var environment = OrchestratorSettings.EnvironmentClient(options);
            using var sandboxes = SandboxClientFactory.Create();
            // As in poll: claims are recorded beside the lock, and a killed predecessor's are settled before any drain.
            var orchestrator = new WorkQueueOrchestrator(environment, sandboxes, options, held);
            await orchestrator.RecoverClaimsAsync(ct);
            await using var receiver = await WebhookReceiver.StartAsync(orchestrator, new WebhookReceiverOptions
            {
                Url = url,
                SigningKey = signingKey,
                FallbackDrainInterval = TimeSpan.FromSeconds(Settings.Int("WEBHOOK_DRAIN_SECONDS", 30, 1, 86400)),
            }, OrchestratorSettings.ConfigureLogging, ct);
            await using var janitor = new SandboxJanitor(sandboxes, logger).Start(OrchestratorSettings.JanitorInterval());
            logger.LogInformation("webhook receiver for environment {Environment} on {Address} (health: {Address}healthz)", options.EnvironmentId, receiver.Address, receiver.Address);
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                logger.LogInformation("stopping: finishing the drain under way");
            }

            return 0;
        });
        return command;
    }
}
