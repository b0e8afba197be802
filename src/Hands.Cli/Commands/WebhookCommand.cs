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
            using var sandboxes = SandboxClientFactory.Create();
            await WebhookMode.RunAsync(options, signingKey, url, sandboxes, logger, ct);
            return 0;
        });
        return command;
    }
}
