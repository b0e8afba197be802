using System.Runtime.Versioning;
using Hands.Engine;
using Microsoft.Extensions.Logging;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// A throw-away local engine for a bench suite (loopback ports, a temporary data directory, no key) and its client.
/// Disposing deletes every sandbox and snapshot it holds, stops it and removes its data, whatever the suite did.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed class BenchEngine : IAsyncDisposable
{
    /// <summary>A python HTTP server on :8080 answering every GET with a count of the GETs so far: state in memory.</summary>
    public const string CounterServer = """
        import http.server, sys
        count = 0
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                global count
                count += 1
                body = str(count).encode()
                self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers(); self.wfile.write(body)
            def log_message(self, *a): pass
        http.server.HTTPServer(('0.0.0.0', 8080), H).serve_forever()
        """;

    private readonly string _data;

    /// <summary>The key the bench engines require (an engine is never open without one).</summary>
    public const string ApiKey = "tl_apiKey_bench-engine-0123456789abcdef";

    private BenchEngine(string data, EngineServer engine)
    {
        _data = data;
        Engine = engine;
        Client = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = engine.ApiAddress, ApiKey = ApiKey, MaxRetries = 0 });
    }

    public EngineServer Engine { get; }

    public TensorlakeClient Client { get; }

    public static async Task<BenchEngine> StartAsync(string suite, string repoRoot, Action<EngineOptions>? configure = null)
    {
        var data = Path.Combine(Path.GetTempPath(), $"hands-bench-{suite}-" + Guid.NewGuid().ToString("N")[..8]);
        var options = new EngineOptions
        {
            DataDirectory = data,
            ApiUrl = new Uri("http://127.0.0.1:0"),
            IngressUrl = new Uri("http://127.0.0.1:0"),
            SandboxDaemonBinary = Path.Combine(repoRoot, "artifacts/hands-sandboxd/hands-sandboxd"),
            HibernateAfter = TimeSpan.FromHours(1),
            ApiKey = ApiKey,
            VolumeMb = 4096,
        };
        // HANDS_BENCH_SPARE_NETWORKS=N sets the engine's spare networks for memory forks (0: off), for A/B runs.
        if (int.TryParse(Environment.GetEnvironmentVariable("HANDS_BENCH_SPARE_NETWORKS"), System.Globalization.CultureInfo.InvariantCulture, out var spares) && spares >= 0)
        {
            options.SpareNetworks = spares;
        }

        configure?.Invoke(options);
        // HANDS_BENCH_ENGINE_LOG=1 prints the engine's log (each boot's and wake's phases) to stderr.
        var engine = await EngineServer.StartAsync(options, logging =>
        {
            if (Environment.GetEnvironmentVariable("HANDS_BENCH_ENGINE_LOG") == "1")
            {
                logging.AddSimpleConsole(o => o.SingleLine = true).AddFilter("Microsoft", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning)
                    .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
            }
        });
        return new BenchEngine(data, engine);
    }

    /// <summary>
    /// Terminates every live sandbox, then deletes every pool (with its warm sandboxes) and every snapshot (children
    /// first, so none answers 409).
    /// </summary>
    public static async Task RemoveAllAsync(TensorlakeClient client)
    {
        await foreach (var sandbox in client.ListAllAsync())
        {
            if (sandbox.Status != SandboxStatus.Terminated)
            {
                await client.DeleteAsync(sandbox.CanonicalId);
            }
        }

        foreach (var pool in await client.ListPoolsAsync())
        {
            await client.DeletePoolAsync(pool.CanonicalId);
        }

        foreach (var snapshot in await client.ListSnapshotsAsync())
        {
            await client.DeleteSnapshotAsync(snapshot.CanonicalId);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await RemoveAllAsync(Client);
        }
        finally
        {
            Client.Dispose();
            await Engine.DisposeAsync();
            Directory.Delete(_data, recursive: true);
        }
    }
}
