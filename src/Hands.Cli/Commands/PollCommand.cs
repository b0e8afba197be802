using System.CommandLine;
using Hands.Cli.Configuration;
using Hands.Orchestrator;
using Microsoft.Extensions.Logging;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands poll</c>: the long-polling orchestrator. Claims each session's work item, runs its worker in the session's
/// sandbox, hands over the lease, and keeps polling; Ctrl-C or SIGTERM stops claiming and finishes what started.
/// </summary>
internal static class PollCommand
{
    public static Command Create()
    {
        var command = new Command("poll", "Serve an environment's work queue by long-polling: one sandbox per session, a worker in each");
        OrchestratorSettings.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            OrchestratorSettings.BecomeNonDumpable();
            using var logging = OrchestratorSettings.ConsoleLogging();
            var logger = logging.CreateLogger("hands.poll");
            var options = OrchestratorSettings.Build(parse, logger);
            var blockMs = Settings.Int("POLL_BLOCK_MS", 999, 1, 999);
            using var held = OrchestratorLock.Acquire(options.EnvironmentId, "poll");
            using var environment = OrchestratorSettings.EnvironmentClient(options);
            using var sandboxes = SandboxClientFactory.Create();
            // Given the lock, it records its claims beside it; a killed predecessor's are settled before the first poll.
            await using var orchestrator = new WorkQueueOrchestrator(environment, sandboxes, options, held);
            await orchestrator.RecoverClaimsAsync(ct);
            await using var janitor = new SandboxJanitor(sandboxes, logger).Start(OrchestratorSettings.JanitorInterval());
            // Liveness, readiness and Prometheus metrics, when HANDS_STATUS_URL names where (e.g. http://127.0.0.1:9464).
            await using var status = Settings.Get("HANDS_STATUS_URL") is { Length: > 0 }
                ? await OrchestratorStatusServer.StartAsync(Settings.Url("HANDS_STATUS_URL", ""), orchestrator, environment, sandboxes, options, cancellationToken: ct)
                : null;
            if (status is not null)
            {
                logger.LogInformation("status on {Address} (livez, readyz, metrics)", status.Address);
            }

            logger.LogInformation("polling environment {Environment} at {Url} (block {Block} ms, up to {K} spawns at once, resume suspended: {Resume}); Ctrl-C to stop",
                options.EnvironmentId, options.BaseUrl, blockMs, options.MaxConcurrentSpawns, options.ResumeSuspendedSessions);
            await orchestrator.RunPollingAsync(blockMs, ct);

            logger.LogInformation("stopped: {Attached} sessions attached, {Failed} failed", orchestrator.SpawnedCount, orchestrator.FailedCount);
            return 0;
        });
        return command;
    }
}
