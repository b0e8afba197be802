using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hands.Common;

namespace Hands.Orchestrator;

/// <summary>
/// The orchestrator's spans and instruments (the <c>Hands</c> source and meter). One work item's handling is the span
/// <c>hands.orchestrator.spawn</c> (INTERNAL; the sibling of the item's ack, as the SDK's poller makes the work span),
/// with <c>anthropic.environment.id</c>, <c>anthropic.environment.work.id</c>, <c>anthropic.session.id</c>,
/// <c>hands.sandbox.name</c>, and at the end <c>hands.sandbox.acquisition</c> and <c>hands.lease.hand_off</c>; its
/// children are the claim's heartbeat, <c>hands.orchestrator.sandbox.acquire</c> (with the Tensorlake calls under it),
/// <c>hands.orchestrator.worker.start</c> and <c>hands.orchestrator.lease.hand_off</c>; the worker's own
/// <c>anthropic.environment.work</c> span continues it, through <c>TRACEPARENT</c> in the worker's environment.
/// </summary>
internal static class OrchestratorTelemetry
{
    /// <summary>Lease hand-offs by outcome (<c>hands.outcome</c>: <c>handed_off</c>, <c>item_stopped</c>, <c>worker_exited</c>, <c>timed_out</c>).</summary>
    public static readonly Counter<long> HandOffs = HandsTelemetry.Meter.CreateCounter<long>(
        "hands.orchestrator.lease.hand_offs", "{hand_off}", "Lease hand-offs to workers, by outcome");

    /// <summary>Spawns (claim to hand-off) by outcome and how the sandbox was obtained.</summary>
    public static readonly Histogram<double> SpawnDuration = HandsTelemetry.Meter.CreateHistogram<double>(
        "hands.orchestrator.spawn.duration", "s", "From a work item's claim to its lease handed to the worker (or the spawn failing), by outcome and sandbox acquisition");

    public static Activity? StartSpawn(string environmentId, string workId, string sessionId, string sandboxName)
    {
        if (!HandsTelemetry.Source.HasListeners())
        {
            return null;
        }

        return HandsTelemetry.Source.StartActivity("hands.orchestrator.spawn", ActivityKind.Internal, default(ActivityContext),
        [
            new("anthropic.environment.id", environmentId),
            new("anthropic.environment.work.id", workId),
            new("anthropic.session.id", sessionId),
            new("hands.sandbox.name", sandboxName),
        ]);
    }

    public static Activity? StartStep(string name) =>
        HandsTelemetry.Source.HasListeners() ? HandsTelemetry.Source.StartActivity("hands.orchestrator." + name, ActivityKind.Internal) : null;

    /// <summary>Ends a step span OK, or ERROR with the exception's type.</summary>
    public static void End(Activity? span, Exception? error = null)
    {
        if (span is null)
        {
            return;
        }

        if (error is null)
        {
            span.SetStatus(ActivityStatusCode.Ok);
        }
        else if (error is not OperationCanceledException)
        {
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", error is HandsException { Code: { Length: > 0 } code } ? code : error.GetType().FullName);
        }

        span.Dispose();
    }

    /// <summary>The lowercase snake-case name of an enum value, as attribute values are written.</summary>
    public static string Snake(Enum value)
    {
        var text = value.ToString();
        var builder = new System.Text.StringBuilder(text.Length + 4);
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsUpper(text[i]) && i > 0)
            {
                builder.Append('_');
            }

            builder.Append(char.ToLowerInvariant(text[i]));
        }

        return builder.ToString();
    }
}
