using Hands.Sandboxes.Client;
using Polly;
using Polly.Retry;

namespace Hands.Forking;

/// <summary>
/// Fork-and-explore's own retry pipelines, built here and nowhere else, on the Tensorlake client's clock. They retry
/// only what the client does not: a create refused for capacity (429) and a snapshot delete refused while a child
/// still stands on it (409). Connection errors and 5xx of idempotent calls are the client's to retry.
/// </summary>
internal static class ForkResilience
{
    /// <summary>Pipeline names, as Polly's telemetry reports them.</summary>
    public const string CapacityWaitPipeline = "fork-capacity-wait";

    /// <inheritdoc cref="CapacityWaitPipeline"/>
    public const string SnapshotDeletePipeline = "fork-snapshot-delete";

    /// <summary>
    /// A child's create refused with 429 is tried again, 200 ms doubling to 2 s apart, until <paramref name="until"/>;
    /// <paramref name="onQueued"/> is told before each wait (the branch shows as queued).
    /// </summary>
    public static ResiliencePipeline BuildCapacityWait(TimeProvider time, DateTimeOffset until, Action<TensorlakeException> onQueued) =>
        new ResiliencePipelineBuilder { Name = CapacityWaitPipeline, TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = int.MaxValue,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = TimeSpan.FromSeconds(2),
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TensorlakeException { Status: 429 } && time.GetUtcNow() < until),
                OnRetry = args =>
                {
                    onQueued((TensorlakeException)args.Outcome.Exception!);
                    return ValueTask.CompletedTask;
                },
            })
            .Build();

    /// <summary>A snapshot delete refused with 409 (a child's delete not landed yet) is tried again, 20 tries 250 ms apart.</summary>
    public static ResiliencePipeline BuildSnapshotDelete(TimeProvider time) =>
        new ResiliencePipelineBuilder { Name = SnapshotDeletePipeline, TimeProvider = time }
            .AddRetry(new RetryStrategyOptions
            {
                MaxRetryAttempts = 19,
                BackoffType = DelayBackoffType.Constant,
                UseJitter = false,
                Delay = TimeSpan.FromMilliseconds(250),
                ShouldHandle = args => ValueTask.FromResult(args.Outcome.Exception is TensorlakeException { Status: 409 }),
            })
            .Build();
}
