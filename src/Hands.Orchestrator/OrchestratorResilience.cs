using Hands.Protocol.Client;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;

namespace Hands.Orchestrator;

/// <summary>
/// The orchestrator's own retry pipelines, built here and nowhere else. Only the long-poll loop retries on its own;
/// single Tensorlake requests are retried by the Tensorlake client, and a failed spawn is retried whole by releasing
/// its item (see <see cref="SessionSpawner"/>).
/// </summary>
internal static class OrchestratorResilience
{
    /// <summary>The poll loop's pipeline name, as Polly's telemetry reports it.</summary>
    public const string WorkPollPipeline = "orchestrator-work-poll";

    /// <summary>
    /// A failed claim in <c>hands poll</c>: a transient API error (not a 4xx the SDKs call fatal, which ends the loop)
    /// is retried for as long as the orchestrator runs, after <see cref="WorkQueueOrchestrator.Backoff"/> on the
    /// options' clock. The polls themselves go out with the API client's retries off, so this is the one layer.
    /// </summary>
    public static ResiliencePipeline BuildWorkPoll(OrchestratorOptions options) =>
        new ResiliencePipelineBuilder { Name = WorkPollPipeline, TimeProvider = options.TimeProvider }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = int.MaxValue,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is ManagedAgentsException { IsFatal: false } && !args.Context.CancellationToken.IsCancellationRequested),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(WorkQueueOrchestrator.Backoff(args.AttemptNumber + 1)),
                OnRetry = args =>
                {
                    var ex = (ManagedAgentsException)args.Outcome.Exception!;
                    options.Logger.LogWarning("poll failed ({Status}): {Error}; retrying in {Delay:0.0} s", ex.Status, ex.ErrorMessage,
                        args.RetryDelay.TotalSeconds);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
}
