using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary>
/// An open event stream of one session (Server-Sent Events). Dispose it to close the connection. Its call span
/// (<c>anthropic.sessions.events.stream</c>) lasts until the stream ends: with no status when the server ends it (SSE
/// has no end event, so an end is not OK) or when it is closed early, ERROR when reading it fails.
/// </summary>
public sealed class SessionEventStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly Stream _body;
    private readonly ApiCallSpan? _span;

    internal SessionEventStream(HttpResponseMessage response, Stream body, ApiCallSpan? span = null)
    {
        _response = response;
        _body = body;
        _span = span;
    }

    /// <summary>Events in arrival order; ends when the server closes the stream.</summary>
    public async IAsyncEnumerable<SessionEvent> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var events = Events(cancellationToken).GetAsyncEnumerator(cancellationToken);
        while (true)
        {
            SessionEvent e;
            try
            {
                if (!await events.MoveNextAsync().ConfigureAwait(false))
                {
                    break;
                }

                e = events.Current;
            }
            catch (Exception ex) when (_span is not null)
            {
                _span.Fail(ex); // a cancellation leaves the status unset
                throw;
            }

            yield return e;
        }

        _span?.End();
    }

    private async IAsyncEnumerable<SessionEvent> Events([EnumeratorCancellation] CancellationToken cancellationToken)
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
        _span?.End(); // closed before the server ended it: a cancellation, no status
        await _body.DisposeAsync().ConfigureAwait(false);
        _response.Dispose();
    }
}
