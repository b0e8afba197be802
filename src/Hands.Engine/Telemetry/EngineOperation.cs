using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Hands.Common;
using Hands.Engine.Storage;

namespace Hands.Engine.Telemetry;

/// <summary>
/// One engine operation on a sandbox, as a span and a measurement: <c>hands.sandbox.{create,fork,suspend,resume,
/// snapshot,pool.claim}</c> (INTERNAL, from the <c>Hands</c> source; the child of the API request's server span when a
/// request asked for it, a root when the idle clock or the pool refill did) with <c>hands.sandbox.id</c>,
/// <c>hands.sandbox.name</c>, <c>hands.sandbox.suspend.tier</c> (<c>freeze</c>, <c>hibernate</c>: the tier a suspend
/// goes to, or a resume comes from) and what the call site adds; ending OK, or ERROR with <c>error.type</c> (the
/// engine's HTTP status for a refusal, else the exception's type). Its duration also goes to the histogram
/// <c>hands.engine.operation.duration</c> (seconds) with <c>hands.operation</c>, <c>hands.sandbox.suspend.tier</c> and
/// <c>hands.outcome</c> (<c>ok</c>, <c>error</c>, <c>cancelled</c>), so wake latency by tier is one query.
/// </summary>
internal sealed class EngineOperation : IDisposable
{
    private static readonly Histogram<double> Duration = HandsTelemetry.Meter.CreateHistogram<double>(
        "hands.engine.operation.duration", "s", "How long engine operations on sandboxes took, by operation, suspend tier and outcome");

    private readonly string _operation;
    private readonly string? _tier;
    private readonly long _started;
    private Activity? _span;
    private string? _outcome;

    private EngineOperation(string operation, string? tier, Activity? span)
    {
        _operation = operation;
        _tier = tier;
        _span = span;
        _started = Stopwatch.GetTimestamp();
    }

    /// <summary>The operation's span, for the call site's own attributes; null when nobody listens.</summary>
    public Activity? Span => _span;

    public static EngineOperation Start(string operation, SandboxRecord? record = null, string? tier = null)
    {
        Activity? span = null;
        if (HandsTelemetry.Source.HasListeners())
        {
            span = HandsTelemetry.Source.StartActivity("hands.sandbox." + operation, ActivityKind.Internal);
            if (span is not null)
            {
                if (record is not null)
                {
                    span.SetTag("hands.sandbox.id", record.Id);
                    if (record.Name is { Length: > 0 } name)
                    {
                        span.SetTag("hands.sandbox.name", name);
                    }
                }

                if (tier is not null)
                {
                    span.SetTag("hands.sandbox.suspend.tier", tier);
                }
            }
        }

        return new EngineOperation(operation, tier, span);
    }

    /// <summary>The operation did what it was asked.</summary>
    public void Succeed()
    {
        _outcome ??= "ok";
        _span?.SetStatus(ActivityStatusCode.Ok);
    }

    /// <summary>
    /// Records the failure and answers false, for an exception filter that lets the exception go on:
    /// <c>catch (Exception ex) when (op.Failed(ex)) { }</c>.
    /// </summary>
    public bool Failed(Exception error)
    {
        if (error is OperationCanceledException)
        {
            _outcome = "cancelled"; // the caller went away: neither done nor failed, so no status
            return false;
        }

        _outcome = "error";
        if (_span is not null)
        {
            _span.SetStatus(ActivityStatusCode.Error);
            _span.SetTag("error.type", error is HandsException { Status: > 0 } refused
                ? refused.Status.ToString(CultureInfo.InvariantCulture)
                : error.GetType().FullName);
        }

        return false;
    }

    public void Dispose()
    {
        var elapsed = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        if (Duration.Enabled)
        {
            Duration.Record(elapsed, new TagList
            {
                { "hands.operation", _operation },
                { "hands.sandbox.suspend.tier", _tier },
                { "hands.outcome", _outcome ?? "error" },
            });
        }

        _span?.Dispose();
        _span = null;
    }
}
