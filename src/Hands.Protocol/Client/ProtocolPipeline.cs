using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Polly;
using Polly.Retry;

namespace Hands.Protocol.Client;

/// <summary>
/// Sends requests with the Managed Agents headers, retries per the SDK policy (the one pipeline of this client,
/// <see cref="PipelineName"/>, on <see cref="ManagedAgentsClientOptions.TimeProvider"/>), and maps errors.
/// </summary>
internal sealed class ProtocolPipeline
{
    private readonly HttpClient _http;
    private readonly ManagedAgentsClientOptions _options;
    private readonly ManagedAgentsCredential _credential;
    private readonly ResiliencePipeline<HttpResponseMessage> _retry;

    /// <summary>The retry pipeline's name, as Polly's telemetry reports it.</summary>
    public const string PipelineName = "managed-agents";

    public ProtocolPipeline(HttpClient http, ManagedAgentsClientOptions options, ManagedAgentsCredential credential)
    {
        _http = http;
        _options = options;
        _credential = credential;
        _retry = BuildRetry(options);
    }

    public ManagedAgentsClientOptions Options => _options;

    public ProtocolPipeline WithCredential(ManagedAgentsCredential credential) => new(_http, _options, credential);

    private static ResiliencePipeline<HttpResponseMessage> BuildRetry(ManagedAgentsClientOptions options)
    {
        if (options.MaxRetries <= 0)
        {
            return ResiliencePipeline<HttpResponseMessage>.Empty;
        }

        var time = options.TimeProvider;
        return new ResiliencePipelineBuilder<HttpResponseMessage> { Name = PipelineName, TimeProvider = time }
            .AddRetry(new RetryStrategyOptions<HttpResponseMessage>
            {
                MaxRetryAttempts = options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = options.InitialRetryDelay,
                MaxDelay = options.MaxRetryDelay,
                ShouldHandle = args => ValueTask.FromResult(ShouldRetry(args.Outcome, args.Context.CancellationToken)),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result, time)),
                OnRetry = args =>
                {
                    args.Outcome.Result?.Dispose();
                    return ValueTask.CompletedTask;
                },
            })
            .Build();
    }

    private static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, CancellationToken ct)
    {
        if (outcome.Exception is HttpRequestException)
        {
            return true;
        }

        if (outcome.Exception is TaskCanceledException && !ct.IsCancellationRequested)
        {
            return true; // a per-request timeout, not the caller cancelling
        }

        if (outcome.Result is not { } response || response.IsSuccessStatusCode)
        {
            return false;
        }

        if (response.Headers.TryGetValues("x-should-retry", out var should))
        {
            var value = should.FirstOrDefault();
            if (value == "true")
            {
                return true;
            }

            if (value == "false")
            {
                return false;
            }
        }

        return ManagedAgentsException.IsRetryableStatus(response.StatusCode);
    }

    private static TimeSpan? RetryAfter(HttpResponseMessage? response, TimeProvider time)
    {
        if (response?.Headers.RetryAfter is { } ra)
        {
            var delay = ra.Delta ?? (ra.Date is { } date ? date - time.GetUtcNow() : null);
            if (delay is { } d && d > TimeSpan.Zero && d <= TimeSpan.FromSeconds(60))
            {
                return d;
            }
        }

        return null; // use the exponential default
    }

    /// <summary>
    /// Makes one API call under its span (<see cref="ApiCallSpan"/>): sends the request (with retries unless
    /// <paramref name="retry"/> is false), then <paramref name="read"/>s the successful response, which is disposed
    /// after. The span ends OK after the read, or with the failure; an error answer throws
    /// <see cref="ManagedAgentsException"/>.
    /// </summary>
    public async Task<T> SendAsync<T>(
        ApiCall call,
        HttpMethod method,
        string path,
        IEnumerable<KeyValuePair<string, string?>>? query,
        byte[]? jsonBody,
        Func<HttpResponseMessage, CancellationToken, Task<T>> read,
        CancellationToken cancellationToken,
        bool streaming = false,
        string? beta = null,
        IDictionary<string, string>? headers = null,
        bool retry = true,
        TimeSpan? timeout = null,
        byte[]? rawBody = null,
        Func<T, IEnumerable<KeyValuePair<string, object?>>?>? responseAttributes = null)
    {
        var span = ApiCallSpan.Start(call, _options);
        try
        {
            using var response = await SendCoreAsync(span, method, path, query, jsonBody, cancellationToken, streaming, beta, headers, retry, timeout, rawBody)
                .ConfigureAwait(false);
            var value = await read(response, cancellationToken).ConfigureAwait(false);
            span?.Succeed(responseAttributes?.Invoke(value));
            return value;
        }
        catch (Exception ex) when (span is not null)
        {
            span.Fail(ex);
            throw;
        }
    }

    /// <summary>
    /// Opens a streamed response (headers read, body not): the caller owns both the response and the span, and ends
    /// the span when the stream ends (<see cref="SessionEventStream"/>). A failure to open ends the span here.
    /// </summary>
    public async Task<(HttpResponseMessage Response, ApiCallSpan? Span)> OpenAsync(
        ApiCall call,
        HttpMethod method,
        string path,
        IEnumerable<KeyValuePair<string, string?>>? query,
        CancellationToken cancellationToken,
        string? beta = null,
        IDictionary<string, string>? headers = null,
        bool retry = true)
    {
        var span = ApiCallSpan.Start(call, _options);
        try
        {
            var response = await SendCoreAsync(span, method, path, query, null, cancellationToken, streaming: true, beta, headers, retry, null, null)
                .ConfigureAwait(false);
            return (response, span);
        }
        catch (Exception ex) when (span is not null)
        {
            span.Fail(ex);
            throw;
        }
    }

    /// <summary>Sends one request; returns the successful response or throws <see cref="ManagedAgentsException"/>.</summary>
    private async Task<HttpResponseMessage> SendCoreAsync(
        ApiCallSpan? span,
        HttpMethod method,
        string path,
        IEnumerable<KeyValuePair<string, string?>>? query,
        byte[]? jsonBody,
        CancellationToken cancellationToken,
        bool streaming,
        string? beta,
        IDictionary<string, string>? headers,
        bool retry,
        TimeSpan? timeout,
        byte[]? rawBody)
    {
        var uri = BuildUri(path, query);
        async ValueTask<HttpResponseMessage> Attempt(CancellationToken ct)
        {
            using var request = new HttpRequestMessage(method, uri);
            ApplyHeaders(request, beta, headers, streaming);
            span?.RecordAttempt(request);
            if (jsonBody is not null)
            {
                request.Content = new ByteArrayContent(jsonBody);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }
            else if (rawBody is not null)
            {
                request.Content = new ByteArrayContent(rawBody);
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            }

            using var timeoutCts = streaming ? null : new CancellationTokenSource(timeout ?? _options.RequestTimeout, _options.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, timeoutCts?.Token ?? CancellationToken.None);

            var completion = streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead;
            return await _http.SendAsync(request, completion, linked.Token).ConfigureAwait(false);
        }

        HttpResponseMessage response;
        try
        {
            response = retry
                ? await _retry.ExecuteAsync(Attempt, cancellationToken).ConfigureAwait(false)
                : await Attempt(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException ex)
        {
            throw new ManagedAgentsException(0, null, $"{method} {path}: connection failed: {ex.Message}", null, null, ex);
        }
        catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ManagedAgentsException(0, "timeout_error", $"{method} {path}: timed out", null, null, ex);
        }

        span?.RecordResponse(response);
        if (!response.IsSuccessStatusCode)
        {
            using (response)
            {
                throw await ToExceptionAsync(response, cancellationToken).ConfigureAwait(false);
            }
        }

        return response;
    }

    /// <summary>One call whose response is a JSON body of <typeparamref name="T"/>.</summary>
    public Task<T> SendJsonAsync<T>(
        ApiCall call, HttpMethod method, string path, IEnumerable<KeyValuePair<string, string?>>? query, byte[]? body,
        JsonTypeInfo<T> typeInfo, CancellationToken cancellationToken, string? beta = null,
        IDictionary<string, string>? headers = null, TimeSpan? timeout = null,
        Func<T, IEnumerable<KeyValuePair<string, object?>>?>? responseAttributes = null) =>
        SendAsync(call, method, path, query, body, async (response, ct) =>
        {
            var stream = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                var value = await JsonSerializer.DeserializeAsync(stream, typeInfo, ct).ConfigureAwait(false);
                return value ?? throw new ManagedAgentsException((int)response.StatusCode, null, $"{method} {path}: empty response body", RequestIdOf(response), null);
            }
        }, cancellationToken, beta: beta, headers: headers, timeout: timeout, responseAttributes: responseAttributes);

    /// <summary>One call whose response body is read as text (an empty body is "").</summary>
    public Task<string> SendForTextAsync(
        ApiCall call, HttpMethod method, string path, IEnumerable<KeyValuePair<string, string?>>? query, byte[]? body,
        CancellationToken cancellationToken, string? beta = null, IDictionary<string, string>? headers = null, bool retry = true,
        TimeSpan? timeout = null, byte[]? rawBody = null) =>
        SendAsync(call, method, path, query, body, static (response, ct) => response.Content.ReadAsStringAsync(ct), cancellationToken,
            beta: beta, headers: headers, retry: retry, timeout: timeout, rawBody: rawBody);

    public static byte[] Serialize<T>(T value, JsonTypeInfo<T> typeInfo) => JsonSerializer.SerializeToUtf8Bytes(value, typeInfo);

    private Uri BuildUri(string path, IEnumerable<KeyValuePair<string, string?>>? query)
    {
        var sb = new StringBuilder(_options.BaseUrl.ToString().TrimEnd('/'));
        sb.Append(path);
        var first = true;
        if (query is not null)
        {
            foreach (var (key, value) in query)
            {
                if (value is null)
                {
                    continue;
                }

                sb.Append(first ? '?' : '&');
                first = false;
                sb.Append(Uri.EscapeDataString(key)).Append('=').Append(Uri.EscapeDataString(value));
            }
        }

        return new Uri(sb.ToString());
    }

    private void ApplyHeaders(HttpRequestMessage request, string? beta, IDictionary<string, string>? headers, bool streaming)
    {
        request.Headers.TryAddWithoutValidation("anthropic-version", _options.AnthropicVersion);
        request.Headers.TryAddWithoutValidation("anthropic-beta", beta ?? _options.Beta);
        if (_credential.IsBearer)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _credential.Value);
        }
        else
        {
            request.Headers.TryAddWithoutValidation("x-api-key", _credential.Value);
        }

        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(streaming ? "text/event-stream" : "application/json"));
        foreach (var (key, value) in _options.Headers)
        {
            request.Headers.TryAddWithoutValidation(key, value);
        }

        if (headers is not null)
        {
            foreach (var (key, value) in headers)
            {
                request.Headers.Remove(key);
                request.Headers.TryAddWithoutValidation(key, value);
            }
        }
    }

    internal static string? RequestIdOf(HttpResponseMessage response) =>
        response.Headers.TryGetValues("request-id", out var values) ? values.FirstOrDefault() : null;

    internal static async Task<ManagedAgentsException> ToExceptionAsync(HttpResponseMessage response, CancellationToken ct)
    {
        var status = (int)response.StatusCode;
        var requestId = RequestIdOf(response);
        string body;
        try
        {
            body = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            body = "";
        }

        ErrorEnvelope? envelope = null;
        try
        {
            envelope = body.Length > 0 ? JsonSerializer.Deserialize(body, ProtocolJsonContext.Default.ErrorEnvelope) : null;
        }
        catch (JsonException)
        {
            // not an envelope; report the raw status below
        }

        var type = envelope?.Error.Type;
        var message = envelope?.Error.Message is { Length: > 0 } m ? m : $"HTTP {status} {response.ReasonPhrase}";
        var exception = new ManagedAgentsException(status, type, message, requestId ?? envelope?.RequestId, envelope?.Error.Details);
        if (status == (int)HttpStatusCode.PreconditionFailed)
        {
            WorkHeartbeat? state = null;
            if (envelope?.Error.Details is { ValueKind: JsonValueKind.Object } details
                && details.TryGetProperty("current_state", out var current))
            {
                state = current.Deserialize(ProtocolJsonContext.Default.WorkHeartbeat);
            }

            return new HeartbeatPreconditionFailedException(exception, state);
        }

        return exception;
    }
}
