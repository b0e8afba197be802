using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary>An open event stream of one session (Server-Sent Events). Dispose it to close the connection.</summary>
public sealed class SessionEventStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;

    internal SessionEventStream(HttpResponseMessage response, Stream body)
    {
        _response = response;
        _body = body;
    }

    /// <summary>Events in arrival order; ends when the server closes the stream.</summary>
    public async IAsyncEnumerable<SessionEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var parser = SseParser.Create(_body);
        await foreach (var item in parser.EnumerateAsync(cancellationToken).ConfigureAwait(false))
        {
            if (item.EventType == "ping" || string.IsNullOrEmpty(item.Data))
            {
                continue;
            }

            if (item.EventType == "error")
            {
                var envelope = JsonSerializer.Deserialize(item.Data, ProtocolJsonContext.Default.ErrorEnvelope);
                throw new ManagedAgentsException(0, envelope?.Error.Type, envelope?.Error.Message ?? item.Data, envelope?.RequestId, null);
            }

            var evt = JsonSerializer.Deserialize(item.Data, ProtocolJsonContext.Default.SessionEvent);
            if (evt is null)
            {
                continue;
            }

            if (string.IsNullOrEmpty(evt.Type) && item.EventType != SseParser.EventTypeDefault)
            {
                evt.Type = item.EventType;
            }

            yield return evt;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _body.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();
    }
}
