using System.Net;
using Polly;
using Polly.Retry;

namespace Hands.Sandboxes.Client;

/// <summary>
/// The Tensorlake client's one retry policy, built here and nowhere else (the Tensorlake SDKs' policy): an idempotent
/// request is tried again after a connection error, a per-try timeout, or a 502/503/504, at most
/// <see cref="TensorlakeClientOptions.MaxRetries"/> times, waiting <c>min(base·2^n, 15 s) × 0.75</c> on the options'
/// <see cref="TensorlakeClientOptions.TimeProvider"/>. Non-idempotent requests (create, start, run, stdin, snapshot,
/// suspend, resume) are sent once. This is the only layer that retries single Tensorlake requests: callers such as the
/// orchestrator must not wrap client calls in retries of their own, or one GET becomes (their tries × these tries) requests.
/// </summary>
internal static class TensorlakeResilience
{
    /// <summary>The pipeline's name, as Polly's telemetry reports it.</summary>
    public const string PipelineName = "tensorlake-idempotent";

    /// <summary>Statuses a call accepts as answers; an accepted status is never retried.</summary>
    public static readonly ResiliencePropertyKey<HttpStatusCode[]> AcceptAlso = new("tensorlake.accept-also");

    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(15);

    public static ResiliencePipeline<HttpResponseMessage> Build(TensorlakeClientOptions options, TimeProvider timeProvider)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxRetries <= 0)
        {
            return ResiliencePipeline<HttpResponseMessage>.Empty;
        }

        var baseDelay = options.RetryBaseDelay;
        return new ResiliencePipelineBuilder<HttpResponseMessage> { Name = PipelineName, TimeProvider = timeProvider }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = false,
                Delay = baseDelay,
                MaxDelay = MaxBackoff,
                ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome, args.Context)),
                DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(Backoff(baseDelay, args.AttemptNumber)),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    /// <summary>The SDK's backoff before retry <paramref name="attempt"/> (0-based): <c>min(base·2^n, 15 s) × 0.75</c>.</summary>
    public static TimeSpan Backoff(TimeSpan baseDelay, int attempt) =>
        TimeSpan.FromSeconds(Math.Min(baseDelay.TotalSeconds * Math.Pow(2, attempt), MaxBackoff.TotalSeconds) * 0.75);

    private static bool IsTransient(Outcome<HttpResponseMessage> outcome, ResilienceContext context)
    {
        if (outcome.Exception is HttpRequestException)
        {
            return true;
        }

        if (outcome.Exception is OperationCanceledException)
        {
            return !context.CancellationToken.IsCancellationRequested; // a per-try timeout, not the caller cancelling
        }

        if (outcome.Result is not { } response
            || (context.Properties.TryGetValue(AcceptAlso, out var accepted) && accepted.Contains(response.StatusCode)))
        {
            return false;
        }

        return response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout;
    }
}
