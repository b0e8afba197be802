using System.Diagnostics;
using System.Diagnostics.Metrics;
using Hands.Common;

namespace Hands.Worker.Telemetry;

/// <summary>
/// The worker's instrument: <c>hands.worker.tool.duration</c> (s), one measurement per executed tool call, from the
/// call's start to its output (the result's post not included, as for the tool span), by <c>gen_ai.tool.name</c> and
/// <c>hands.outcome</c> (<c>ok</c>, <c>error</c>: the result is an error, timeouts included; <c>cancelled</c>: the
/// runner was stopped under it). Calls answered from the journal without running are not measured.
/// </summary>
internal static class ToolMetrics
{
    public static readonly Histogram<double> Duration = HandsTelemetry.Meter.CreateHistogram<double>(
        "hands.worker.tool.duration", "s", "Tool calls executed by the worker, from start to output, by tool and outcome");

    public static void Record(string tool, long startTimestamp, bool isError, bool runnerStopped)
    {
        if (!Duration.Enabled)
        {
            return;
        }

        var outcome = !isError ? "ok" : runnerStopped ? "cancelled" : "error";
        Duration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds,
            new KeyValuePair<string, object?>("gen_ai.tool.name", tool), new KeyValuePair<string, object?>("hands.outcome", outcome));
    }
}
