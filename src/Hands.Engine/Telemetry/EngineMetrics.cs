using System.Diagnostics.Metrics;
using Hands.Common;
using Hands.Engine.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Telemetry;

/// <summary>
/// The engine's instruments beyond <see cref="EngineOperation"/>'s durations: <c>hands.engine.sandboxes</c> (a gauge
/// of live sandboxes by <c>hands.sandbox.state</c>, <c>pending</c>, <c>running</c>, <c>frozen</c>, <c>hibernated</c>,
/// <c>snapshotting</c>, <c>suspending</c>, and <c>hands.pool.warm</c>), <c>hands.engine.volume.free</c> (bytes the data
/// volume can still take) and <c>hands.engine.api.errors</c> (answers of 400 and above by status code and route).
/// The gauges belong to one engine and go when it stops.
/// </summary>
internal sealed class EngineMetrics : IDisposable
{
    private static readonly Counter<long> ApiErrors = HandsTelemetry.Meter.CreateCounter<long>(
        "hands.engine.api.errors", "{error}", "Engine API answers of 400 and above, by status code and route");

    private readonly Meter _meter = new(HandsTelemetry.SourceName, HandsTelemetry.Version);

    public EngineMetrics(SandboxManager sandboxes)
    {
        _meter.CreateObservableGauge("hands.engine.sandboxes", () => sandboxes.AllAlive()
            .GroupBy(s => (State: SandboxLifecycle.StateOf(s), s.Warm))
            .Select(g => new Measurement<long>(g.Count(),
                new KeyValuePair<string, object?>("hands.sandbox.state", g.Key.State.ToString().ToLowerInvariant()),
                new KeyValuePair<string, object?>("hands.pool.warm", g.Key.Warm))),
            "{sandbox}", "Live sandboxes by state (and whether they wait warm in a pool)");
        _meter.CreateObservableGauge("hands.engine.volume.free", () => sandboxes.Volume.FreeBytes, "By",
            "What the engine's data volume can still take");
    }

    /// <summary>Counts the API's error answers; a middleware, after the request is answered.</summary>
    public static async Task CountErrorsAsync(HttpContext context, RequestDelegate next)
    {
        await next(context).ConfigureAwait(false);
        var status = context.Response.StatusCode;
        if (status >= 400 && ApiErrors.Enabled)
        {
            ApiErrors.Add(1,
                new KeyValuePair<string, object?>("http.response.status_code", status),
                new KeyValuePair<string, object?>("http.route", (context.GetEndpoint() as Microsoft.AspNetCore.Routing.RouteEndpoint)?.RoutePattern.RawText));
        }
    }

    public void Dispose() => _meter.Dispose();
}
