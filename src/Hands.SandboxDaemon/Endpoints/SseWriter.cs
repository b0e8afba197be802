using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Hands.SandboxDaemon.Endpoints;

/// <summary>Writes a <c>text/event-stream</c> answer: unnamed data frames (run), named events (follow), keep-alive comments.</summary>
internal sealed class SseWriter
{
    private readonly HttpResponse _response;
    private readonly CancellationToken _cancellationToken;

    public SseWriter(HttpContext context)
    {
        _response = context.Response;
        _cancellationToken = context.RequestAborted;
        _response.StatusCode = 200;
        _response.ContentType = "text/event-stream";
        _response.Headers.CacheControl = "no-cache";
        _response.Headers["X-Accel-Buffering"] = "no";
    }

    public Task StartAsync() => _response.Body.FlushAsync(_cancellationToken);

    public Task DataAsync<T>(T value, JsonTypeInfo<T> type, string? eventName = null)
    {
        var prefix = eventName is null ? "" : $"event: {eventName}\n";
        return WriteAsync($"{prefix}data: {JsonSerializer.Serialize(value, type)}\n\n");
    }

    public Task KeepAliveAsync() => WriteAsync(": keep-alive\n\n");

    private async Task WriteAsync(string frame)
    {
        await _response.Body.WriteAsync(Encoding.UTF8.GetBytes(frame), _cancellationToken).ConfigureAwait(false);
        await _response.Body.FlushAsync(_cancellationToken).ConfigureAwait(false);
    }
}
