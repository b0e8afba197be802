using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Client;

/// <summary>
/// Sends Tensorlake requests: Bearer auth, PAT scope headers, a fresh W3C <c>traceparent</c> per request,
/// <c>Content-Length: 0</c> on empty POSTs, retries only for idempotent calls, and errors as <see cref="TensorlakeException"/>
/// (plain-text lifecycle bodies and the daemon's <c>{"error","code"}</c> JSON alike).
/// </summary>
internal sealed class TensorlakeTransport(HttpClient http, TensorlakeClientOptions options)
{
    public TensorlakeClientOptions Options => options;

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, HttpContent? content, bool idempotent,
        CancellationToken cancellationToken, IDictionary<string, string>? headers = null, bool streaming = false, TimeSpan? timeout = null,
        params HttpStatusCode[] acceptAlso)
    {
        var attempt = 0;
        var payload = content is null ? null : await content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var contentType = content?.Headers.ContentType;
        while (true)
        {
            var traceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
            using var request = new HttpRequestMessage(method, url);
            request.Headers.TryAddWithoutValidation("traceparent", $"00-{traceId}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}-01");
            request.Headers.UserAgent.ParseAdd("hands-sandboxes/0.1");
            if (options.ApiKey is { Length: > 0 } key)
            {
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            }

            if (options.OrganizationId is { Length: > 0 } org && options.ProjectId is { Length: > 0 } project)
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

            if (payload is not null)
            {
                request.Content = new ByteArrayContent(payload);
                request.Content.Headers.ContentType = contentType;
            }
            else if (method == HttpMethod.Post || method == HttpMethod.Put || method == HttpMethod.Patch)
            {
                request.Content = new ByteArrayContent([]); // explicit Content-Length: 0, as the SDK sends
            }

            using var timeoutCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            if (timeout is { } t)
            {
                timeoutCts.CancelAfter(t);
            }

            HttpResponseMessage response;
            try
            {
                response = await http.SendAsync(request, streaming ? HttpCompletionOption.ResponseHeadersRead : HttpCompletionOption.ResponseContentRead,
                    timeoutCts.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when ((ex is HttpRequestException || (ex is TaskCanceledException && !cancellationToken.IsCancellationRequested)) && idempotent && attempt < options.MaxRetries)
            {
                await DelayAsync(attempt++, cancellationToken).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException ex)
            {
                throw new TensorlakeException(0, "CONNECTION_FAILED", $"{method} {url}: {ex.Message}", traceId, ex);
            }
            catch (TaskCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                throw new TensorlakeException(0, "TIMEOUT", $"{method} {url}: timed out", traceId, ex);
            }

            if (response.IsSuccessStatusCode || acceptAlso.Contains(response.StatusCode))
            {
                return response;
            }

            if (idempotent && attempt < options.MaxRetries && response.StatusCode is HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout)
            {
                response.Dispose();
                await DelayAsync(attempt++, cancellationToken).ConfigureAwait(false);
                continue;
            }

            using (response)
            {
                throw await ErrorAsync(response, traceId, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private Task DelayAsync(int attempt, CancellationToken ct)
    {
        var seconds = Math.Min(options.RetryBaseDelay.TotalSeconds * Math.Pow(2, attempt), 15) * 0.75;
        return Task.Delay(TimeSpan.FromSeconds(seconds), ct);
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
