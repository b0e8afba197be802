using System.Buffers;
using System.Net.ServerSentEvents;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Hands.SandboxDaemon.Endpoints;

/// <summary>
/// Writes a <c>text/event-stream</c> answer: unnamed data frames (run), named events (follow), keep-alive comments.
/// Frames go through <see cref="SseFormatter"/>; the keep-alive is a comment, which the formatter has no item for, and
/// upstream's daemon sends one, so it is written as the one literal line.
/// </summary>
internal sealed class SseWriter
{
    private static readonly byte[] KeepAlive = ": keep-alive\n\n"u8.ToArray();

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

    // One frame per call: a frame comes from the replay, the live channel or the exit, with keep-alives between them.
    public async Task DataAsync<T>(T value, JsonTypeInfo<T> type, string? eventName = null)
    {
        await SseFormatter.WriteAsync(new[] { new SseItem<T>(value, eventName) }.ToAsyncEnumerable(), _response.Body, (item, buffer) => Serialize(item.Data, type, buffer), _cancellationToken).ConfigureAwait(false);
        await _response.Body.FlushAsync(_cancellationToken).ConfigureAwait(false);
    }

    public async Task KeepAliveAsync()
    {
        await _response.Body.WriteAsync(KeepAlive, _cancellationToken).ConfigureAwait(false);
        await _response.Body.FlushAsync(_cancellationToken).ConfigureAwait(false);
    }

    private static void Serialize<T>(T value, JsonTypeInfo<T> type, IBufferWriter<byte> buffer)
    {
        using var json = new Utf8JsonWriter(buffer);
        JsonSerializer.Serialize(json, value, type);
    }
}
