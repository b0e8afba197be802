using System.Diagnostics.Metrics;
using System.Text.Json.Nodes;
using Hands.Common;
using Hands.Hosting;
using Hands.Protocol.Client;
using Hands.Sandboxes.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// The orchestrator's own small HTTP server (<c>HANDS_STATUS_URL</c>, loopback by default; no key, so keep it off
/// public interfaces): <c>GET /livez</c> (200 while the process serves), <c>GET /readyz</c> (200 when the work queue
/// answers its stats call with the environment key and the sandbox provider answers a one-sandbox list; 503 naming
/// what failed), and <c>GET /metrics</c> (Prometheus text). Its gauges: <c>hands.orchestrator.spawns.in_flight</c>,
/// and <c>hands.work_queue.depth</c> / <c>hands.work_queue.pending</c> as the queue's stats said at the last scrape or
/// probe (each <c>/metrics</c> asks the queue first, bounded by <see cref="ProbeTimeout"/>).
/// </summary>
public sealed class OrchestratorStatusServer : IAsyncDisposable
{
    /// <summary>How long one dependency check may take before it counts as unreachable.</summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(5);

    private readonly WebApplication _app;
    private readonly Meter _meter = new(HandsTelemetry.SourceName, HandsTelemetry.Version);
    private readonly ManagedAgentsClient _queue;
    private readonly TensorlakeClient _provider;
    private readonly OrchestratorOptions _options;
    private (int Depth, int Pending)? _stats;

    private OrchestratorStatusServer(WebApplication app, WorkQueueOrchestrator orchestrator, ManagedAgentsClient queue, TensorlakeClient provider, OrchestratorOptions options)
    {
        _app = app;
        _queue = queue;
        _provider = provider;
        _options = options;
        _meter.CreateObservableGauge("hands.orchestrator.spawns.in_flight", () => orchestrator.InFlight, "{spawn}",
            "Work items between claim and hand-off (or failure) now");
        _meter.CreateObservableGauge("hands.work_queue.depth", () => _stats is { } s ? [new Measurement<int>(s.Depth)] : Array.Empty<Measurement<int>>(),
            "{item}", "Items queued in the environment's work queue, as its stats said at the last scrape");
        _meter.CreateObservableGauge("hands.work_queue.pending", () => _stats is { } s ? [new Measurement<int>(s.Pending)] : Array.Empty<Measurement<int>>(),
            "{item}", "Items claimed but not yet acknowledged, as the queue's stats said at the last scrape");
    }

    /// <summary>Where it listens.</summary>
    public Uri Address { get; private set; } = null!;

    public static async Task<OrchestratorStatusServer> StartAsync(Uri url, WorkQueueOrchestrator orchestrator, ManagedAgentsClient environmentClient,
        TensorlakeClient provider, OrchestratorOptions options, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(options);
        var builder = SlimWebHost.CreateBuilder(new WebHostSettings(url.ToString(), 0) { Logging = logging });
        var app = builder.Build();
        var server = new OrchestratorStatusServer(app, orchestrator, environmentClient, provider, options);
        app.MapGet("/livez", () => Results.Text("ok"));
        app.MapGet("/readyz", server.ReadyAsync);
        PrometheusMetrics.EnsureListening();
        app.MapGet("/metrics", server.MetricsAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        server.Address = app.BoundAddress();
        return server;
    }

    private async Task ReadyAsync(HttpContext context)
    {
        var (queueOk, queueProblem) = await CheckAsync(async ct =>
        {
            var stats = await _queue.Work.StatsAsync(_options.EnvironmentId, ct).ConfigureAwait(false);
            _stats = (stats.Depth, stats.Pending);
        }, context.RequestAborted).ConfigureAwait(false);
        var (providerOk, providerProblem) = await CheckAsync(ct => _provider.ListAsync(limit: 1, cancellationToken: ct), context.RequestAborted).ConfigureAwait(false);
        var ready = queueOk && providerOk;
        var body = new JsonObject
        {
            ["status"] = ready ? "ready" : "not_ready",
            ["checks"] = new JsonObject
            {
                ["queue"] = new JsonObject { ["ok"] = queueOk, ["problem"] = queueProblem },
                ["provider"] = new JsonObject { ["ok"] = providerOk, ["problem"] = providerProblem },
            },
        };
        context.Response.StatusCode = ready ? 200 : 503;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body.ToJsonString(), context.RequestAborted).ConfigureAwait(false);
    }

    private async Task MetricsAsync(HttpContext context)
    {
        await CheckAsync(async ct =>
        {
            var stats = await _queue.Work.StatsAsync(_options.EnvironmentId, ct).ConfigureAwait(false);
            _stats = (stats.Depth, stats.Pending);
        }, context.RequestAborted).ConfigureAwait(false);
        context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
        await context.Response.WriteAsync(PrometheusMetrics.Scrape(), context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Runs one dependency check within <see cref="ProbeTimeout"/> (on the options' clock); the problem's text never carries a key.</summary>
    private async Task<(bool Ok, string? Problem)> CheckAsync(Func<CancellationToken, Task> check, CancellationToken aborted)
    {
        using var timeout = new CancellationTokenSource(ProbeTimeout, _options.TimeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(aborted, timeout.Token);
        try
        {
            await check(linked.Token).ConfigureAwait(false);
            return (true, null);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested && !aborted.IsCancellationRequested)
        {
            return (false, $"no answer within {ProbeTimeout.TotalSeconds:0} s");
        }
        catch (HandsException ex)
        {
            return (false, ex.Message);
        }
        catch (HttpRequestException ex)
        {
            return (false, ex.Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _meter.Dispose();
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }
}
