using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Hands.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Hands.Faults;

/// <summary>
/// An HTTP proxy on loopback in front of the control plane, for the faults a network and an overloaded API inflict:
/// <see cref="Burst"/> answers every request with 500 or 429 for a while (as an API under strain would), and
/// <see cref="Cut"/> is a network cut: connections open at that instant are dropped, and new ones are accepted but
/// get nothing until the cut ends, then are dropped too (so a client learns of it only by its own timeouts). Otherwise
/// it forwards, SSE streams included; when the control plane itself is down the client's connection is dropped, as it
/// would be without the proxy.
/// </summary>
public sealed class FaultProxy : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Uri _upstream;
    private readonly TimeProvider _time;
    private readonly IHttpForwarder _forwarder;
    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        ConnectTimeout = TimeSpan.FromSeconds(5),
        ActivityHeadersPropagator = null,
    });

    // SSE streams idle between the control plane's pings; YARP's default of 100 s would not cut them, but be explicit.
    private readonly ForwarderRequestConfig _config = new() { ActivityTimeout = TimeSpan.FromMinutes(10) };
    private readonly ConcurrentDictionary<HttpContext, byte> _inFlight = new();
    private readonly ConcurrentDictionary<string, int> _ledger = new(StringComparer.Ordinal);
    private readonly object _gate = new();
    private long _burstUntil;
    private int _burstStatus;
    private long _cutUntil;
    private TaskCompletionSource _cutOver = Completed();
    private long _forwarded;
    private long _answered500;
    private long _answered429;
    private long _cutDropped;

    private FaultProxy(string name, WebApplication app, Uri upstream, TimeProvider time)
    {
        Name = name;
        _app = app;
        _upstream = upstream;
        _time = time;
        _forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        app.Run(HandleAsync);
    }

    /// <summary>Its short name (whose traffic it carries).</summary>
    public string Name { get; }

    /// <summary>Its loopback port.</summary>
    public int Port { get; private set; }

    /// <summary>Requests forwarded to the control plane.</summary>
    public long Forwarded => Interlocked.Read(ref _forwarded);

    /// <summary>Requests answered 500 by a burst.</summary>
    public long Answered500 => Interlocked.Read(ref _answered500);

    /// <summary>Requests answered 429 by a burst.</summary>
    public long Answered429 => Interlocked.Read(ref _answered429);

    /// <summary>Connections dropped by a cut (open at its start, or opened during it).</summary>
    public long CutDropped => Interlocked.Read(ref _cutDropped);

    /// <summary>
    /// The path prefix of the harness's own ledger: <c>POST /__ledger/SESSION/STEP</c> from a step's command records that
    /// the step ran, outside the sandbox, so a step run again in a sandbox that replaced a lost one still shows twice.
    /// Never forwarded, and not subject to bursts or cuts (it is the harness watching, not the control plane).
    /// </summary>
    public const string LedgerPath = "/__ledger/";

    /// <summary>How many times each step posted its line to the host ledger (see <see cref="LedgerPath"/>).</summary>
    public int LedgerCount(string line) => _ledger.GetValueOrDefault(line);

    /// <summary>Starts it on <c>127.0.0.1:<paramref name="port"/></c> (0: any free port) forwarding to <paramref name="upstream"/>.</summary>
    public static async Task<FaultProxy> StartAsync(string name, int port, Uri upstream, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(upstream);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Services.AddHttpForwarder();
        var proxy = new FaultProxy(name, builder.Build(), upstream, time ?? TimeProvider.System);
        await proxy._app.StartAsync().ConfigureAwait(false);
        proxy.Port = proxy._app.BoundAddress().Port;
        return proxy;
    }

    /// <summary>For <paramref name="duration"/> from now, every request is answered <paramref name="status"/> (500 or 429) instead of forwarded.</summary>
    public void Burst(int status, TimeSpan duration)
    {
        if (status is not (500 or 429))
        {
            throw new ArgumentOutOfRangeException(nameof(status), status, "a burst answers 500 or 429");
        }

        lock (_gate)
        {
            _burstStatus = status;
            _burstUntil = _time.GetTimestamp() + (long)(duration.TotalSeconds * _time.TimestampFrequency);
        }
    }

    /// <summary>Cuts the network for <paramref name="duration"/>: open connections are dropped now, new ones hang until it ends, then are dropped.</summary>
    public void Cut(TimeSpan duration)
    {
        TaskCompletionSource over;
        lock (_gate)
        {
            _cutUntil = _time.GetTimestamp() + (long)(duration.TotalSeconds * _time.TimestampFrequency);
            over = _cutOver = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        foreach (var open in _inFlight.Keys)
        {
            Interlocked.Increment(ref _cutDropped);
            open.Abort();
        }

        // The end of the cut is a timer on the run's clock; the last cut set wins if cuts overlap.
        _ = Task.Delay(duration, _time).ContinueWith(_ =>
        {
            lock (_gate)
            {
                if (ReferenceEquals(over, _cutOver))
                {
                    _cutUntil = 0;
                }
            }

            over.TrySetResult();
        }, TaskScheduler.Default);
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        if (ctx.Request.Path.Value is { } path && path.StartsWith(LedgerPath, StringComparison.Ordinal))
        {
            var parts = path[LedgerPath.Length..].Split('/');
            if (parts.Length == 2 && int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var step))
            {
                _ledger.AddOrUpdate(LedgerScenario.Line(parts[0], step), 1, (_, n) => n + 1);
            }

            ctx.Response.StatusCode = 204;
            return;
        }

        Task? cut = null;
        var burst = 0;
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            if (now < _cutUntil)
            {
                cut = _cutOver.Task;
            }
            else if (now < _burstUntil)
            {
                burst = _burstStatus;
            }
        }

        if (cut is not null)
        {
            Interlocked.Increment(ref _cutDropped);
            try
            {
                await cut.WaitAsync(ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // The client gave up first.
            }

            ctx.Abort();
            return;
        }

        if (burst != 0)
        {
            await AnswerAsync(ctx, burst).ConfigureAwait(false);
            return;
        }

        _inFlight.TryAdd(ctx, 0);
        try
        {
            Interlocked.Increment(ref _forwarded);
            var error = await _forwarder.SendAsync(ctx, _upstream.ToString(), _client, _config, StreamHeadersAtOnce.Instance).ConfigureAwait(false);
            if (error != ForwarderError.None && !ctx.Response.HasStarted)
            {
                // The control plane is down (or dropped us): drop the client's connection too, as a direct one would be.
                ctx.Abort();
            }
        }
        finally
        {
            _inFlight.TryRemove(ctx, out _);
        }
    }

    private async Task AnswerAsync(HttpContext ctx, int status)
    {
        Interlocked.Increment(ref status == 500 ? ref _answered500 : ref _answered429);
        var (type, message) = status == 500
            ? ("api_error", "injected by the fault proxy: internal server error")
            : ("rate_limit_error", "injected by the fault proxy: rate limited");
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        ctx.Response.Headers["request-id"] = "req_fault_" + Guid.NewGuid().ToString("N")[..12];
        if (status == 429)
        {
            ctx.Response.Headers.RetryAfter = "1";
        }

        await ctx.Response.WriteAsync($$$"""{"type":"error","error":{"type":"{{{type}}}","message":"{{{message}}}"}}""", Encoding.UTF8, ctx.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>
    /// YARP sends a response's headers with its first body bytes; an SSE stream's first bytes may be a ping 15 s later,
    /// and a client (the worker) waits for the headers before it reads the history. The control plane sends them at
    /// once, so the proxy does too.
    /// </summary>
    private sealed class StreamHeadersAtOnce : HttpTransformer
    {
        public static readonly StreamHeadersAtOnce Instance = new();

        public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
        {
            var proceed = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
            if (proceed && proxyResponse?.Content.Headers.ContentType?.MediaType == "text/event-stream")
            {
                await httpContext.Response.StartAsync(cancellationToken).ConfigureAwait(false);
                await httpContext.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            return proceed;
        }
    }

    private static TaskCompletionSource Completed()
    {
        var done = new TaskCompletionSource();
        done.SetResult();
        return done;
    }

    public async ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _cutUntil = 0;
            _cutOver.TrySetResult();
        }

        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _client.Dispose();
    }
}
