using System.Text;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Webhooks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.ControlPlane.Webhooks;

/// <summary>
/// Delivers queued webhook events, Standard Webhooks signed (a fresh <c>webhook-timestamp</c> per attempt, the same
/// <c>webhook-id</c> on every retry). Any 2xx acknowledges; a 3xx disables the endpoint (redirects are not followed);
/// anything else is retried with jittered exponential backoff, up to the configured attempts, then dropped.
/// </summary>
/// <remarks>
/// Not a Polly pipeline on purpose: a delivery's retry schedule is durable (<c>attempts</c> and <c>next_attempt_ms</c>
/// in the outbox), so it survives a restart and one slow endpoint holds no task. The loop here is a poll of the
/// outbox, and it waits on <see cref="ControlPlaneOptions.Time"/>, the clock the schedule is written in.
/// </remarks>
public sealed class WebhookDispatcher : BackgroundService
{
    private readonly ControlPlaneCore _core;
    private readonly ILogger<WebhookDispatcher> _logger;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _wake = new(0);

    public WebhookDispatcher(ControlPlaneCore core, ILogger<WebhookDispatcher> logger)
    {
        _core = core;
        _logger = logger;
        _http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(5), ConnectCallback = Hands.Protocol.Client.LocalhostNames.ConnectAsync })
        {
            Timeout = core.Options.WebhookTimeout,
        };
        core.Webhooks = this;
    }

    public void Wake() => _wake.Release();


    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                var due = _core.Read(sql => sql.Query("""
                    SELECT o.id, o.endpoint_id, o.body, o.attempts, e.json, e.secret FROM webhook_outbox o
                    JOIN webhook_endpoints e ON e.id=o.endpoint_id WHERE o.next_attempt_ms <= $now ORDER BY o.next_attempt_ms LIMIT 32
                    """, r => new Delivery(r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt32(3),
                        Store.Deserialize(r.GetString(4), ProtocolJsonContext.Default.WebhookEndpoint).Url, r.GetString(5)),
                    ("$now", _core.Now.ToUnixTimeMilliseconds())));
                await Task.WhenAll(due.Select(d => DeliverAsync(d, stoppingToken)));
                var next = _core.Read(sql => sql.Scalar<long?>("SELECT MIN(next_attempt_ms) FROM webhook_outbox"));
                var wait = next is { } n ? TimeSpan.FromMilliseconds(Math.Clamp(n - _core.Now.ToUnixTimeMilliseconds(), 0, 1000)) : TimeSpan.FromSeconds(1);
                if (due.Count == 0 || wait > TimeSpan.Zero)
                {
                    await WakeOrElapseAsync(wait, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                _logger.LogError(ex, "webhook dispatch loop failed; retrying");
                await Task.Delay(TimeSpan.FromSeconds(1), _core.Options.Time, stoppingToken);
            }
        }
    }

    /// <summary>Returns on <see cref="Wake"/> or once <paramref name="wait"/> has passed on the control plane's clock.</summary>
    private async Task WakeOrElapseAsync(TimeSpan wait, CancellationToken stoppingToken)
    {
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var woken = _wake.WaitAsync(waiting.Token);
        var elapsed = Task.Delay(wait, _core.Options.Time, waiting.Token);
        await Task.WhenAny(woken, elapsed);
        // The loser is cancelled; a cancelled semaphore wait takes no count, so a Wake() that comes later is not lost.
        await waiting.CancelAsync();
        try
        {
            await Task.WhenAll(woken, elapsed);
        }
        catch (OperationCanceledException)
        {
            // The loser, cancelled just above (or the service stopping, thrown below).
        }

        stoppingToken.ThrowIfCancellationRequested();
    }

    private async Task DeliverAsync(Delivery d, CancellationToken ct)
    {
        var body = Encoding.UTF8.GetBytes(d.Body);
        int? status = null;
        string? failure = null;
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, d.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            foreach (var (name, value) in new WebhookSigner(d.Secret).Headers(d.EventId, _core.Now, body))
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await _http.SendAsync(request, ct);
            status = (int)response.StatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            failure = ex.Message;
        }

        var attempts = d.Attempts + 1;
        _core.Write(scope =>
        {
            if (status is >= 200 and < 300)
            {
                scope.Sql.Exec("DELETE FROM webhook_outbox WHERE id=$id AND endpoint_id=$e", ("$id", d.EventId), ("$e", d.EndpointId));
            }
            else if (status is >= 300 and < 400)
            {
                scope.Sql.Exec("DELETE FROM webhook_outbox WHERE endpoint_id=$e", ("$e", d.EndpointId));
                scope.Sql.Exec("""
                    UPDATE webhook_endpoints SET json=json_set(json, '$.disabled_at', $now, '$.disabled_reason', $why) WHERE id=$e
                    """, ("$now", scope.NowText), ("$why", $"endpoint answered {status}; redirects are not followed"), ("$e", d.EndpointId));
                _logger.LogWarning("webhook endpoint {Endpoint} disabled: it answered {Status}", d.EndpointId, status);
            }
            else if (attempts >= _core.Options.WebhookMaxAttempts)
            {
                scope.Sql.Exec("DELETE FROM webhook_outbox WHERE id=$id AND endpoint_id=$e", ("$id", d.EventId), ("$e", d.EndpointId));
                _logger.LogWarning("webhook {EventId} to {Endpoint} dropped after {Attempts} attempts (last: {Outcome})",
                    d.EventId, d.EndpointId, attempts, status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? failure);
            }
            else
            {
                var baseMs = _core.Options.WebhookRetryBase.TotalMilliseconds * Math.Pow(2, attempts - 1);
                var delay = Math.Min(120_000, baseMs * (0.75 + Random.Shared.NextDouble() * 0.5));
                scope.Sql.Exec("UPDATE webhook_outbox SET attempts=$a, next_attempt_ms=$t WHERE id=$id AND endpoint_id=$e",
                    ("$a", attempts), ("$t", scope.NowMs + (long)delay), ("$id", d.EventId), ("$e", d.EndpointId));
            }

            return 0;
        });
    }

    public override void Dispose()
    {
        _http.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    private sealed record Delivery(string EventId, string EndpointId, string Body, int Attempts, string Url, string Secret);
}
