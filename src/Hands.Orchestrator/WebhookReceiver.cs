using System.Collections.Concurrent;
using System.Text.Json;
using Hands.Hosting;
using Hands.Protocol.Json;
using Hands.Webhooks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>Settings of <c>hands webhook</c>.</summary>
public sealed class WebhookReceiverOptions
{
    /// <summary>Where to listen, e.g. <c>http://0.0.0.0:5051</c>; port 0 picks a free one.</summary>
    public Uri Url { get; init; } = new("http://127.0.0.1:5051");

    /// <summary><c>ANTHROPIC_WEBHOOK_SIGNING_KEY</c> (<c>whsec_...</c>).</summary>
    public required string SigningKey { get; init; }

    /// <summary><c>WEBHOOK_DRAIN_SECONDS</c>: a drain also runs this often, for deliveries that never came (default 30 s).</summary>
    public TimeSpan FallbackDrainInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Largest body accepted (deliveries are thin: a few hundred bytes).</summary>
    public int MaxBodyBytes { get; init; } = 1 << 20;
}

/// <summary>
/// The webhook mode: an ASP.NET Core endpoint that verifies each delivery's Standard Webhooks signature over the raw
/// bytes (401 with no detail when it fails; timestamps more than five minutes off are refused by the scheme), answers
/// at once, and on <c>session.status_run_started</c> drains the queue in the background. A delivery whose
/// <c>webhook-id</c> was already handled (a retry, or a replay within the timestamp window) is acknowledged without a
/// second drain. Other event types are acknowledged and ignored. A fallback drain runs every
/// <see cref="WebhookReceiverOptions.FallbackDrainInterval"/>; <c>GET /healthz</c> reports status. While shutting
/// down, deliveries get 503 so the sender retries elsewhere or later. At start the orchestrator settles the claims a
/// killed predecessor left (<see cref="WorkQueueOrchestrator.RecoverClaimsAsync"/>); if it released any, one drain runs
/// as soon as they are queued again, since their sessions' deliveries came and went before the crash.
/// </summary>
public sealed class WebhookReceiver : IAsyncDisposable
{
    private static readonly TimeSpan ReplayWindow = TimeSpan.FromMinutes(10);
    private readonly WebApplication _app;
    private readonly WorkQueueOrchestrator _orchestrator;
    private readonly WebhookVerifier _verifier;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ConcurrentDictionary<string, long> _seen = new(StringComparer.Ordinal);
    private readonly Task _fallback;
    private readonly Task _recovered;
    private long _deliveries;
    private long _drains;
    private Task _lastDrain = Task.CompletedTask;

    private WebhookReceiver(WebApplication app, WorkQueueOrchestrator orchestrator, WebhookReceiverOptions options, ILogger logger)
    {
        _app = app;
        _orchestrator = orchestrator;
        _verifier = new WebhookVerifier(options.SigningKey);
        _logger = logger;
        app.MapPost("/", context => HandleAsync(context, options.MaxBodyBytes));
        app.MapPost("/webhook", context => HandleAsync(context, options.MaxBodyBytes));
        app.MapGet("/healthz", Health);
        _fallback = FallbackAsync(options.FallbackDrainInterval);
        _recovered = DrainRecoveredAsync();
    }

    /// <summary>Where the receiver listens.</summary>
    public Uri Address { get; private set; } = null!;

    /// <summary>Verified deliveries handled.</summary>
    public long Deliveries => Interlocked.Read(ref _deliveries);

    /// <summary>Starts listening. The key must be a well-formed <c>whsec_</c> secret.</summary>
    public static async Task<WebhookReceiver> StartAsync(WorkQueueOrchestrator orchestrator, WebhookReceiverOptions options, Action<ILoggingBuilder>? logging = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!WebhookSecret.IsWellFormed(options.SigningKey))
        {
            throw new OrchestratorException("ANTHROPIC_WEBHOOK_SIGNING_KEY is not a signing secret: expected 'whsec_' followed by base64 (the value shown once when the endpoint was registered).");
        }

        var builder = SlimWebHost.CreateBuilder(new WebHostSettings(options.Url.ToString(), options.MaxBodyBytes) { Logging = logging });
        var app = builder.Build();
        app.UseServerSpans();
        var receiver = new WebhookReceiver(app, orchestrator, options, app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Hands.Orchestrator.Webhook"));
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        receiver.Address = app.BoundAddress();
        return receiver;
    }

    private async Task HandleAsync(HttpContext context, int maxBodyBytes)
    {
        if (_stopping.IsCancellationRequested)
        {
            context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
            return;
        }

        byte[] body;
        try
        {
            using var buffer = new MemoryStream();
            await context.Request.Body.CopyToAsync(buffer, context.RequestAborted).ConfigureAwait(false);
            body = buffer.ToArray();
        }
        catch (BadHttpRequestException)
        {
            await WriteAsync(context, StatusCodes.Status413PayloadTooLarge, $$"""{"error":"body larger than {{maxBodyBytes}} bytes"}""").ConfigureAwait(false);
            return;
        }

        if (!_verifier.TryVerify(body, context.Request.Headers, out var reason))
        {
            // The reason (missing header, stale timestamp, no matching signature) stays in the log; the caller learns nothing.
            _logger.LogWarning("refused a webhook delivery: {Reason}", reason);
            await WriteAsync(context, StatusCodes.Status401Unauthorized, """{"error":"invalid signature"}""").ConfigureAwait(false);
            return;
        }

        Protocol.Models.WebhookEvent? delivery;
        try
        {
            delivery = JsonSerializer.Deserialize(body, ProtocolJsonContext.Default.WebhookEvent);
        }
        catch (JsonException)
        {
            delivery = null;
        }

        if (delivery?.Data is null || string.IsNullOrEmpty(delivery.Data.Type))
        {
            await WriteAsync(context, StatusCodes.Status400BadRequest, """{"error":"body is not a webhook event: expected {\"type\":\"event\",\"data\":{\"type\":...}}"}""").ConfigureAwait(false);
            return;
        }

        Interlocked.Increment(ref _deliveries);
        if (!FirstTime(context.Request.Headers["webhook-id"].ToString()))
        {
            await WriteAsync(context, StatusCodes.Status200OK, """{"status":"duplicate"}""").ConfigureAwait(false);
            return;
        }

        if (delivery.Data.Type != "session.status_run_started")
        {
            await WriteAsync(context, StatusCodes.Status200OK, """{"status":"ignored"}""").ConfigureAwait(false);
            return;
        }

        _logger.LogInformation("session {Session} started a run: draining", delivery.Data.Id);
        TriggerDrain();
        await WriteAsync(context, StatusCodes.Status200OK, """{"status":"draining"}""").ConfigureAwait(false);
    }

    private bool FirstTime(string webhookId)
    {
        var now = Environment.TickCount64;
        if (_seen.Count > 10_000)
        {
            foreach (var (id, at) in _seen)
            {
                if (now - at > ReplayWindow.TotalMilliseconds)
                {
                    _seen.TryRemove(id, out _);
                }
            }
        }

        return _seen.TryAdd(webhookId, now);
    }

    /// <summary>Drains detached from the delivery: the session can outlive the sender's timeout.</summary>
    private void TriggerDrain()
    {
        Interlocked.Increment(ref _drains);
        _lastDrain = Task.Run(async () =>
        {
            try
            {
                var summary = await _orchestrator.DrainAsync(_stopping.Token).ConfigureAwait(false);
                if (summary.Outcomes.Count > 0)
                {
                    _logger.LogInformation("drain: {Spawned} attached, {Failed} failed", summary.Spawned, summary.Failed);
                }
            }
            catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
            {
            }
            catch (Exception ex) when (ex is OrchestratorException or Protocol.Client.ManagedAgentsException or HttpRequestException)
            {
                _logger.LogError("drain failed: {Error}", ex.Message);
            }
        });
    }

    private async Task DrainRecoveredAsync()
    {
        try
        {
            if (await _orchestrator.WhenReleasedClaimsRequeuedAsync(_stopping.Token).ConfigureAwait(false))
            {
                _logger.LogInformation("claims released from a previous orchestrator are queued again: draining");
                TriggerDrain();
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
    }

    private async Task FallbackAsync(TimeSpan interval)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                TriggerDrain();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private IResult Health() => Results.Text(
        $$"""{"status":"ok","deliveries":{{Deliveries}},"drains":{{Interlocked.Read(ref _drains)}},"attached":{{_orchestrator.SpawnedCount}},"failed":{{_orchestrator.FailedCount}},"in_flight":{{_orchestrator.InFlight}}}""",
        "application/json");

    private static Task WriteAsync(HttpContext context, int status, string json)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsync(json, context.RequestAborted);
    }

    /// <summary>Refuses new deliveries (503), stops listening, and lets the drain under way and its spawns finish.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _fallback.ConfigureAwait(false);
        await _recovered.ConfigureAwait(false);
        await _app.StopAsync().ConfigureAwait(false);
        await _lastDrain.ConfigureAwait(false);
        await _orchestrator.WhenIdleAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }
}
