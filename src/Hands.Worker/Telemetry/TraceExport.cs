using Hands.Common;
using Hands.Protocol.Client;
using Hands.Worker.Hosting;
using OpenTelemetry;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Hands.Worker.Telemetry;

/// <summary>
/// The worker's trace export: the OpenTelemetry SDK with the OTLP exporter, configured by the standard <c>OTEL_*</c>
/// variables (the exporter reads <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>_PROTOCOL</c>, <c>_HEADERS</c>, <c>_TIMEOUT</c> and
/// their <c>_TRACES_</c> forms itself; the batch processor <c>OTEL_BSP_*</c>; the resource <c>OTEL_SERVICE_NAME</c>,
/// default <c>hands-worker</c>, and <c>OTEL_RESOURCE_ATTRIBUTES</c>). It starts only when those variables ask for
/// traces, so a worker nobody collects from starts no SDK and pays nothing. Disposing it flushes what is left, bounded.
/// </summary>
internal sealed class TraceExport : IDisposable
{
    /// <summary>How long exit waits for the last spans to go out.</summary>
    public static readonly TimeSpan FlushBudget = TimeSpan.FromSeconds(5);

    private readonly TracerProvider _provider;

    private TraceExport(TracerProvider provider) => _provider = provider;

    /// <summary>Starts the export when the environment asks for it; null (nothing started) otherwise.</summary>
    public static TraceExport? Start(ManagedAgentsTracingOptions tracing, WorkerLog log, Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        if (!tracing.Enabled || !Wanted(read, log))
        {
            return null;
        }

        try
        {
            var resource = ResourceBuilder.CreateEmpty()
                .AddService("hands-worker", serviceVersion: HandsTelemetry.Version)
                .AddTelemetrySdk()
                .AddEnvironmentVariableDetector(); // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the defaults above
            var provider = Sdk.CreateTracerProviderBuilder()
                .SetResourceBuilder(resource)
                .AddSource(HandsTelemetry.SourceName)
                .AddOtlpExporter()
                .Build();
            log.Debug("exporting traces over OTLP", ("protocol", read("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") ?? read("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc"));
            return new TraceExport(provider);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Telemetry never stops the worker: a bad OTEL_* value (or a broken install) costs the traces, not the session.
            log.Warn("traces are not exported: the OpenTelemetry SDK did not start", ("error", ex.Message));
            return null;
        }
    }

    /// <summary>
    /// Whether the environment asks for traces: not with <c>OTEL_SDK_DISABLED=true</c> or <c>OTEL_TRACES_EXPORTER=none</c>;
    /// yes with <c>OTEL_TRACES_EXPORTER=otlp</c> (the exporter's default endpoint then) or an OTLP endpoint set. Unlike the
    /// specification's default of <c>otlp</c>, nothing set means off: a worker in every sandbox must not try a collector
    /// that is not there.
    /// </summary>
    internal static bool Wanted(Func<string, string?> read, WorkerLog? log = null) => Wanted(read, "TRACES", log);

    /// <summary>The same rule for one signal (<c>TRACES</c>, <c>METRICS</c>): <c>OTEL_{signal}_EXPORTER</c> and <c>OTEL_EXPORTER_OTLP_{signal}_ENDPOINT</c>.</summary>
    internal static bool Wanted(Func<string, string?> read, string signal, WorkerLog? log)
    {
        if (string.Equals(read("OTEL_SDK_DISABLED")?.Trim(), "true", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        if (read($"OTEL_{signal}_EXPORTER") is { Length: > 0 } exporters)
        {
            var names = exporters.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (names.Contains("none", StringComparer.OrdinalIgnoreCase))
            {
                return false;
            }

            foreach (var name in names.Where(n => !n.Equals("otlp", StringComparison.OrdinalIgnoreCase)))
            {
                log?.Warn($"OTEL_{signal}_EXPORTER: only otlp and none are supported; ignoring this one", ("exporter", name));
            }

            if (names.Contains("otlp", StringComparer.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return !string.IsNullOrWhiteSpace(read("OTEL_EXPORTER_OTLP_ENDPOINT")) || !string.IsNullOrWhiteSpace(read($"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"));
    }

    /// <summary>Sends what is still buffered (within <see cref="FlushBudget"/>) and stops the SDK.</summary>
    public void Dispose()
    {
        _provider.Shutdown((int)FlushBudget.TotalMilliseconds);
        _provider.Dispose();
    }
}
