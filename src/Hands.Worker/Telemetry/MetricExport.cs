using Hands.Common;
using Hands.Protocol.Client;
using Hands.Worker.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Hands.Worker.Telemetry;

/// <summary>
/// The worker's metric export (<see cref="ToolMetrics"/>): the OpenTelemetry SDK's periodic reader with the OTLP
/// exporter, by the same rules as <see cref="TraceExport"/> for the <c>METRICS</c> signal (an OTLP endpoint set, or
/// <c>OTEL_METRICS_EXPORTER=otlp</c>; <c>none</c> and <c>OTEL_SDK_DISABLED=true</c> win), with the same resource. The
/// reader exports every <c>OTEL_METRIC_EXPORT_INTERVAL</c> (60 s by default) and once more when the worker exits, so
/// a worker that lives for one session still reports it. Off with <c>ANTHROPIC_OPEN_TELEMETRY=false</c> too.
/// </summary>
internal sealed class MetricExport : IDisposable
{
    private readonly MeterProvider _provider;

    private MetricExport(MeterProvider provider) => _provider = provider;

    /// <summary>Starts the export when the environment asks for it; null (nothing started) otherwise.</summary>
    public static MetricExport? Start(ManagedAgentsTracingOptions tracing, WorkerLog log, Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        if (!tracing.Enabled || !TraceExport.Wanted(read, "METRICS", log))
        {
            return null;
        }

        try
        {
            var resource = ResourceBuilder.CreateEmpty()
                .AddService("hands-worker", serviceVersion: HandsTelemetry.Version)
                .AddTelemetrySdk()
                .AddEnvironmentVariableDetector();
            var provider = Sdk.CreateMeterProviderBuilder()
                .SetResourceBuilder(resource)
                .AddMeter(HandsTelemetry.SourceName)
                .AddOtlpExporter()
                .Build();
            return new MetricExport(provider);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // As for traces: a bad OTEL_* value costs the metrics, never the session.
            log.Warn("metrics are not exported: the OpenTelemetry SDK did not start", ("error", ex.Message));
            return null;
        }
    }

    /// <summary>Exports what was measured since the last export (within <see cref="TraceExport.FlushBudget"/>) and stops the SDK.</summary>
    public void Dispose()
    {
        _provider.Shutdown((int)TraceExport.FlushBudget.TotalMilliseconds);
        _provider.Dispose();
    }
}
