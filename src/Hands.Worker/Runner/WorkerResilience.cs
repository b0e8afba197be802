using Hands.Protocol.Client;
using Hands.Worker.Hosting;
using Polly;
using Polly.Retry;

namespace Hands.Worker.Runner;

/// <summary>The environment worker's own retry pipelines, built here and nowhere else.</summary>
internal static class WorkerResilience
{
    /// <summary>The poll loop's pipeline name, as Polly's telemetry reports it.</summary>
    public const string WorkPollPipeline = "worker-work-poll";

    /// <summary>
    /// A failed poll in <c>hands-worker poll</c>: a transient API error (not a 4xx the SDKs call fatal, which stops the
    /// poller) is retried for as long as the worker runs, after 1 s doubling to 60 s less up to a quarter for jitter
    /// (the TypeScript poller's rule), on <paramref name="time"/>. The poller's API client has its retries off, so
    /// this is the one layer that retries a poll.
    /// </summary>
    public static ResiliencePipeline BuildWorkPoll(TimeProvider time, WorkerLog log) =>
        new ResiliencePipelineBuilder { Name = WorkPollPipeline, TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = int.MaxValue,
                ShouldHandle = args => ValueTask.FromResult(
                    args.Outcome.Exception is ManagedAgentsException { IsFatal: false } && !args.Context.CancellationToken.IsCancellationRequested),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(
                    TimeSpan.FromSeconds(Math.Min(60, Math.Pow(2, args.AttemptNumber)) * (1 - (Random.Shared.NextDouble() * 0.25)))),
                OnRetry = args =>
                {
                    log.Warn("poll failed, backing off", ("error", ((ManagedAgentsException)args.Outcome.Exception!).ErrorMessage),
                        ("backoff", args.RetryDelay));
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
}
