using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Hands.Sandboxes.Models;
using Polly;

namespace Hands.Sandboxes.Client;

/// <summary>
/// Sends Tensorlake requests: Bearer auth, PAT scope headers, one W3C <c>traceparent</c> trace id per call (each attempt
/// its own span id), <c>Content-Length: 0</c> on empty POSTs, idempotent calls retried by the one
/// <see cref="TensorlakeResilience"/> pipeline, per-try timeouts on the options' <see cref="TimeProvider"/>, and errors
/// as <see cref="TensorlakeException"/> (plain-text lifecycle bodies and the daemon's <c>{"error","code"}</c> JSON alike;
/// no answer as <see cref="TensorlakeConnectionException"/>, no answer in time as <see cref="TensorlakeTimeoutException"/>).
/// </summary>
internal sealed class TensorlakeTransport
{
    private readonly HttpClient _http;
    private readonly TimeSpan? _defaultTimeout;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    /// <param name="http">A client with no timeout of its own: timeouts are per try, on the options' clock.</param>
    /// <param name="options">Where and how to connect, and the retry policy.</param>
    /// <param name="defaultTimeout">Each try's timeout when a call names none; null for none (streams).</param>
    public TensorlakeTransport(HttpClient http, TensorlakeClientOptions options, TimeSpan? defaultTimeout)
    {
        ArgumentNullException.ThrowIfNull(options);
        _http = http;
        Options = options;
        _defaultTimeout = defaultTimeout;
        _retry = TensorlakeResilience.Build(options, options.TimeProvider);
    }

    public TensorlakeClientOptions Options { get; }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, HttpContent? content, bool idempotent,
        CancellationToken cancellationToken, IDictionary<string, string>? headers = null, bool streaming = false, TimeSpan? timeout = null,
        params HttpStatusCode[] acceptAlso)
    {
        var payload = content is null ? null : await content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var contentType = content?.Headers.ContentType;
        // One span per logical call, every attempt sending its context, so the server shows a retried call as one
        // operation in the caller's trace; with nobody listening, one trace id per call all the same.
        using var span = TensorlakeCallSpan.Start(method, url);
        var traceId = span is null ? Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)) : span.TraceId.ToHexString();
        var tryTimeout = timeout ?? _defaultTimeout;

        async ValueTask<HttpResponseMessage> Attempt(ResilienceContext context)
        {
            using var request = new HttpRequestMessage(method, url);
            request.Headers.TryAddWithoutValidation("traceparent", span is null
                ? $"00-{traceId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}-01"
                : span.Id);
            if (span?.TraceStateString is { Length: > 0 } state)
            {
                request.Headers.TryAddWithoutValidation("tracestate", state);
            }

            ApplyHeaders(request, headers);
            if (payload is not null)
            {
                request.Content = new ByteArrayContent(payload);
                request.Content.Headers.ContentType = contentType;
            }
            else if (method == HttpMethod.Post || method == HttpMethod.Put || method == HttpMethod.Patch)
            {
                request.Content = new ByteArrayContent([]); // explicit Content-Length: 0, as the SDK sends
            }

            using var timeoutCts = tryTimeout is { } t ? new CancellationTokenSource(t, Options.TimeProvider) : null;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, timeoutCts?.Token ?? CancellationToken.None);
            return await _http.SendAsync(request, streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead,
                linked.Token).ConfigureAwait(false);
        }

        var context = ResilienceContextPool.Shared.Get(cancellationToken);
        context.Properties.Set(TensorlakeResilience.AcceptAlso, acceptAlso);
        HttpResponseMessage response;
        try
        {
            response = await (idempotent ? _retry : ResiliencePipeline<HttpResponseMessage>.Empty).ExecuteAsync(Attempt, context).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            TensorlakeCallSpan.Failed(span, "connection_error");
            throw new TensorlakeConnectionException($"{method} {url}: {ex.Message}", traceId, ex);
        }
        catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            TensorlakeCallSpan.Failed(span, "client_timeout_error");
            throw new TensorlakeTimeoutException($"{method} {url}: timed out", traceId, ex);
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }

        if (response.IsSuccessStatusCode || acceptAlso.Contains(response.StatusCode))
        {
            TensorlakeCallSpan.Answered(span, (int)response.StatusCode, failed: false, code: null);
            return response;
        }

        using (response)
        {
            var error = await ErrorAsync(response, traceId, cancellationToken).ConfigureAwait(false);
            TensorlakeCallSpan.Answered(span, (int)response.StatusCode, failed: true, error.Code);
            throw error;
        }
    }

    private void ApplyHeaders(HttpRequestMessage request, IDictionary<string, string>? headers)
    {
        request.Headers.UserAgent.ParseAdd("hands-sandboxes/0.1");
        if (Options.ApiKey is { Length: > 0 } key)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        if (Options.OrganizationId is { Length: > 0 } org && Options.ProjectId is { Length: > 0 } project)
        {
            request.Headers.TryAddWithoutValidation("X-Forwarded-Organization-Id", org);
            request.Headers.TryAddWithoutValidation("X-Forwarded-Project-Id", project);
        }

        foreach (var (name, value) in headers ?? new Dictionary<string, string>())
        {
            if (string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.Host = value;
            }
            else
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
        }
    }

    private static async Task<TensorlakeException> ErrorAsync(HttpResponseMessage response, string traceId, CancellationToken ct)
    {
        var body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        string? code = null;
        var message = body.Trim();
        if (message.StartsWith('{'))
        {
            try
            {
                var error = JsonSerializer.Deserialize(message, SandboxesJsonContext.Default.ProxyError);
                if (error?.Error is { Length: > 0 } text)
                {
                    message = text;
                    code = error.Code;
                }
            }
            catch (JsonException)
            {
            }
        }

        if (message.Length == 0)
        {
            message = response.ReasonPhrase ?? "request failed";
        }

        return new TensorlakeException((int)response.StatusCode, code, message, traceId);
    }

    public async Task<T> JsonAsync<T>(HttpMethod method, string url, HttpContent? content, bool idempotent, JsonTypeInfo<T> type,
        CancellationToken ct, IDictionary<string, string>? headers = null, TimeSpan? timeout = null, params HttpStatusCode[] acceptAlso)
    {
        using var response = await SendAsync(method, url, content, idempotent, ct, headers, timeout: timeout, acceptAlso: acceptAlso).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        try
        {
            return JsonSerializer.Deserialize(text, type) ?? throw new TensorlakeException((int)response.StatusCode, null, $"{method} {url}: empty response", null);
        }
        catch (JsonException ex)
        {
            throw new TensorlakeException((int)response.StatusCode, "BAD_RESPONSE", $"{method} {url}: unreadable JSON: {ex.Message}", null, ex);
        }
    }

    public static HttpContent Json<T>(T value, JsonTypeInfo<T> type)
    {
        var content = new ByteArrayContent(JsonSerializer.SerializeToUtf8Bytes(value, type));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return content;
    }
}
