using Hands.Common;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Hands.Cli;

/// <summary>
/// The <c>hands</c> process's export of Hands' spans and instruments (the <c>Hands</c> source and meter) with the
/// OpenTelemetry SDK and its OTLP exporter, configured by the standard <c>OTEL_*</c> variables and off unless they
/// ask: traces when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> or <c>..._TRACES_ENDPOINT</c> is set or
/// <c>OTEL_TRACES_EXPORTER=otlp</c>, metrics likewise with <c>_METRICS_</c>; never with <c>OTEL_SDK_DISABLED=true</c> or
/// an exporter of <c>none</c>. <c>service.name</c> is <c>hands-{command}</c> (<c>hands-engine</c>, <c>hands-poll</c>,
/// <c>hands-up</c>, ...) unless <c>OTEL_SERVICE_NAME</c> says otherwise.
/// </summary>
internal sealed class HostTelemetry : IDisposable
{
    private readonly TracerProvider? _traces;
    private readonly MeterProvider? _metrics;

    private HostTelemetry(TracerProvider? traces, MeterProvider? metrics)
    {
        _traces = traces;
        _metrics = metrics;
    }

    public static HostTelemetry? Start(string command, Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        var traces = Wanted(read, "TRACES");
        var metrics = Wanted(read, "METRICS");
        if (!traces && !metrics)
        {
            return null;
        }

        try
        {
            var resource = ResourceBuilder.CreateEmpty()
                .AddService("hands-" + command, serviceVersion: HandsTelemetry.Version)
                .AddTelemetrySdk()
                .AddEnvironmentVariableDetector();
            var tracer = traces
                ? Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(HandsTelemetry.SourceName).AddOtlpExporter().Build()
                : null;
            var meter = metrics
                ? Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(HandsTelemetry.SourceName).AddOtlpExporter().Build()
                : null;
            return new HostTelemetry(tracer, meter);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"hands: telemetry is not exported: the OpenTelemetry SDK did not start: {ex.Message}");
            return null;
        }
    }

    /// <summary>
    /// Traces and metrics of this process to one OTLP/HTTP receiver (<c>http/protobuf</c>), whatever <c>OTEL_*</c>
    /// says: what <c>--dashboard</c> starts, beside any export the environment asked for.
    /// </summary>
    public static HostTelemetry ToOtlpHttp(string command, Uri endpoint)
    {
        var resource = ResourceBuilder.CreateEmpty()
            .AddService("hands-" + command, serviceVersion: HandsTelemetry.Version)
            .AddTelemetrySdk();
        // Set in code, the exporter's endpoint is used as given: the signal's path is not appended for us.
        var tracer = Sdk.CreateTracerProviderBuilder().SetResourceBuilder(resource).AddSource(HandsTelemetry.SourceName)
            .AddOtlpExporter(o => Http(o, new Uri(endpoint, "v1/traces"))).Build();
        var meter = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(HandsTelemetry.SourceName)
            .AddOtlpExporter(o => Http(o, new Uri(endpoint, "v1/metrics"))).Build();
        return new HostTelemetry(tracer, meter);
    }

    private static void Http(OpenTelemetry.Exporter.OtlpExporterOptions options, Uri endpoint)
    {
        options.Protocol = OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf;
        options.Endpoint = endpoint;
    }

    /// <summary>Sends what is buffered now (bounded by <paramref name="timeoutMilliseconds"/>); answers whether all of it went.</summary>
    public bool Flush(int timeoutMilliseconds = 5000) =>
        (_traces?.ForceFlush(timeoutMilliseconds) ?? true) & (_metrics?.ForceFlush(timeoutMilliseconds) ?? true);

    /// <summary>Whether the environment asks for this signal (<c>TRACES</c>, <c>METRICS</c>) to be exported over OTLP.</summary>
    internal static bool Wanted(Func<string, string?> read, string signal)
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

            if (names.Contains("otlp", StringComparer.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return !string.IsNullOrWhiteSpace(read("OTEL_EXPORTER_OTLP_ENDPOINT")) || !string.IsNullOrWhiteSpace(read($"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"));
    }

    /// <summary>Flushes what is buffered (bounded) and stops the SDK.</summary>
    public void Dispose()
    {
        _traces?.Shutdown(5000);
        _traces?.Dispose();
        _metrics?.Shutdown(5000);
        _metrics?.Dispose();
    }
}
