using System.Diagnostics;
using Hands.Common;
using Hands.Protocol.Client;

namespace Hands.Worker.Telemetry;

/// <summary>
/// The <c>anthropic.environment.work</c> span of one claimed work item, as the official worker makes it
/// (<c>lib/internal/tracing/environments.ts</c>): INTERNAL, started when the item is claimed (before the ack, which is
/// its sibling), current while the item is served (so heartbeats, the session fetch, the event stream, tool spans,
/// result posts and the final stop are its children), and ended OK when serving finished, ERROR with
/// <c>error.type</c> when it failed, and with no status when the lease was lost or refused (the worker no longer
/// holds the item) or the worker itself was stopped.
/// </summary>
internal static class WorkSpan
{
    public const string Name = "anthropic.environment.work";

    /// <summary>
    /// Starts the span of item <paramref name="workId"/> under <paramref name="parent"/> (the current activity when it
    /// is default). Null when tracing is off or nobody listens.
    /// </summary>
    public static Activity? Start(ManagedAgentsTracingOptions tracing, string environmentId, string workId, string sessionId, ActivityContext parent = default)
    {
        if (!tracing.Enabled || !HandsTelemetry.Source.HasListeners())
        {
            return null;
        }

        return HandsTelemetry.Source.StartActivity(Name, ActivityKind.Internal, parent,
        [
            new("gen_ai.provider.name", HandsTelemetry.ProviderName),
            new("anthropic.environment.id", environmentId),
            new("anthropic.environment.work.id", workId),
            // The item's data id, whatever its type (the SDK sets it for a non-session item too).
            new("anthropic.session.id", sessionId),
        ]);
    }

    /// <summary>Serving finished: OK, unless the worker was being stopped (then neither finished nor failed: no status).</summary>
    public static void Succeed(Activity? span, bool aborted)
    {
        if (span is null || span.IsStopped)
        {
            return;
        }

        if (!aborted)
        {
            span.SetStatus(ActivityStatusCode.Ok);
        }

        span.Stop();
    }

    /// <summary>Serving failed with <paramref name="error"/>: ERROR and <c>error.type</c>, except for a stop or a cancellation.</summary>
    public static void Fail(Activity? span, bool aborted, Exception error)
    {
        if (span is null || span.IsStopped)
        {
            return;
        }

        if (!aborted && error is not OperationCanceledException)
        {
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", TraceErrorType.Of(error));
        }

        span.Stop();
    }

    /// <summary>The lease was lost or refused: the item is not this worker's any more, so it ends with no status.</summary>
    public static void Release(Activity? span)
    {
        if (span is { IsStopped: false })
        {
            span.Stop();
        }
    }

    /// <summary>
    /// The parent a worker process takes from <c>TRACEPARENT</c>/<c>TRACESTATE</c> (a Hands extension: the orchestrator
    /// sets them when it starts <c>hands-worker run</c>, so the worker's spans join its trace; the official SDK reads
    /// no trace context from the environment). Default when unset or malformed.
    /// </summary>
    public static ActivityContext ParentFromEnvironment(Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        return read("TRACEPARENT") is { Length: > 0 } traceparent
            && ActivityContext.TryParse(traceparent, read("TRACESTATE"), isRemote: true, out var context)
            ? context
            : default;
    }
}
