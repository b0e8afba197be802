using System.Diagnostics;
using System.Runtime.Versioning;
using Hands.Common;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Hands.Bench;

/// <summary>
/// Tracing on vs off: a sandbox create (client, engine API and engine spans, in this process) and a worker tool call
/// (hands-worker's spans and tool metric, in its own process), each with the OTLP/HTTP exporter sending to a receiver
/// on loopback, and with nothing set. The variants alternate in blocks so drift on the shared machine hits both.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class TracingBench
{
    private const int Block = 5;

    public static async Task<IEnumerable<string>> RunAsync(int n, string repoRoot)
    {
        await using var receiver = await OtlpSink.StartAsync();
        var rows = new List<string>();

        var createOff = new Measurements("create sandbox + run /bin/true, tracing off");
        var createOn = new Measurements("create sandbox + run /bin/true, tracing on (OTLP/HTTP to loopback)");
        await using (var bench = await BenchEngine.StartAsync("tracing", repoRoot))
        {
            for (var done = 0; done < n; done += Block)
            {
                await CreatesAsync(bench.Client, Block, createOff);
                using var traces = Sdk.CreateTracerProviderBuilder().AddSource(HandsTelemetry.SourceName)
                    .AddOtlpExporter(o => Http(o, new Uri(receiver.Address, "v1/traces"))).Build();
                using var metrics = Sdk.CreateMeterProviderBuilder().AddMeter(HandsTelemetry.SourceName)
                    .AddOtlpExporter(o => Http(o, new Uri(receiver.Address, "v1/metrics"))).Build();
                await CreatesAsync(bench.Client, Block, createOn);
                traces.ForceFlush(5000);
            }
        }

        rows.Add(createOff.Row());
        rows.Add(createOn.Row());
        rows.Add(WorkerBench.Ratio("create, on / off", createOn, createOff));

        var binary = Path.Combine(repoRoot, "artifacts", "hands-worker", "hands-worker");
        var calls = Math.Min(n * 4, 200);
        var exporting = new Dictionary<string, string>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.Address.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        };
        var callOff = new Measurements("hands-worker per read call, tracing off");
        var callOn = new Measurements("hands-worker per read call, tracing on (OTLP/HTTP to loopback)");
        for (var round = 0; round < 2; round++)
        {
            callOff.Add(await WorkerBench.PerCallAsync(callOff.Name, calls, binary, "", official: false));
            callOn.Add(await WorkerBench.PerCallAsync(callOn.Name, calls, binary, "", official: false, exporting));
        }

        rows.Add(callOff.Row());
        rows.Add(callOn.Row(receiver.Received > 0 ? $"{receiver.Received} OTLP exports received" : "NO export received"));
        rows.Add(WorkerBench.Ratio("per call, on / off", callOn, callOff));
        return rows;
    }

    private static void Http(OtlpExporterOptions options, Uri endpoint)
    {
        options.Protocol = OtlpExportProtocol.HttpProtobuf;
        options.Endpoint = endpoint;
    }

    private static async Task CreatesAsync(TensorlakeClient client, int count, Measurements into)
    {
        for (var i = 0; i < count; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
            await client.Proxy(created).RunAsync(new RunProcessRequest { Command = "/bin/true" });
            into.Add(start);
            await client.DeleteAsync(created.CanonicalId);
        }
    }

    /// <summary>An OTLP/HTTP receiver on loopback that accepts every export and counts them (what a collector costs the sender).</summary>
    private sealed class OtlpSink : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private int _received;

        private OtlpSink(WebApplication app, Uri address)
        {
            _app = app;
            Address = address;
        }

        public Uri Address { get; }

        public int Received => Volatile.Read(ref _received);

        public static async Task<OtlpSink> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            OtlpSink? sink = null;
            app.MapPost("/v1/{signal}", async context =>
            {
                await context.Request.Body.CopyToAsync(Stream.Null);
                Interlocked.Increment(ref sink!._received);
                context.Response.ContentType = "application/x-protobuf";
            });
            await app.StartAsync();
            var address = new Uri(app.Urls.First() + "/");
            sink = new OtlpSink(app, address);
            return sink;
        }

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }
}
