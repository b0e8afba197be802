using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/sessions/{id}/events</c>: send, list (paged) and stream (SSE).</summary>
public sealed class EventsOperations
{
    private readonly ProtocolPipeline _p;

    internal EventsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    /// <summary>
    /// Sends events; returns them as the server recorded them (with ids). <paramref name="conversationId"/> is the
    /// SDK's per-request <c>openTelemetry.conversationId</c>: it goes on the call's span as <c>gen_ai.conversation.id</c>
    /// and is never sent.
    /// </summary>
    public async Task<IReadOnlyList<SessionEvent>> SendAsync(string sessionId, IEnumerable<SessionEvent> events,
        CancellationToken cancellationToken = default, bool retry = true, TimeSpan? timeout = null, string? conversationId = null)
    {
        var body = ProtocolPipeline.Serialize(new SessionEventList { Events = events.ToList() }, ProtocolJsonContext.Default.SessionEventList);
        var text = await _p.SendForTextAsync(new ApiCall(ApiEndpoints.EventsSend, sessionId) { ConversationId = conversationId }, HttpMethod.Post,
            $"/v1/sessions/{Query.Escape(sessionId)}/events", null, body, cancellationToken, retry: retry, timeout: timeout).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text))
        {
            return []; // accept any 2xx, including an empty 204
        }

        var list = JsonSerializer.Deserialize(text, ProtocolJsonContext.Default.SessionEventList);
        return list?.Data ?? [];
    }

    /// <summary>One page of the history, ascending by default.</summary>
    public Task<Page<SessionEvent>> ListAsync(string sessionId, int? limit = null, string? page = null, string? order = null,
        IEnumerable<string>? types = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.EventsList, sessionId), HttpMethod.Get, $"/v1/sessions/{Query.Escape(sessionId)}/events",
            new Query().With("limit", limit).With("page", page).With("order", order).WithArray("types", types), null,
            ProtocolJsonContext.Default.PageSessionEvent, cancellationToken);

    /// <summary>The whole history, every page, ascending.</summary>
    public async IAsyncEnumerable<SessionEvent> ListAllAsync(string sessionId, int pageSize = 1000,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? page = null;
        do
        {
            var result = await ListAsync(sessionId, pageSize, page, "asc", null, cancellationToken).ConfigureAwait(false);
            foreach (var e in result.Data)
            {
                yield return e;
            }

            page = result.NextPage;
        }
        while (page is not null);
    }

    /// <summary>
    /// Opens the SSE stream and yields events as they arrive. Only events emitted after the stream opens are sent,
    /// unless <paramref name="lastEventId"/> asks the server to resume after a known event. <c>ping</c> frames are
    /// skipped; an <c>error</c> frame throws <see cref="ManagedAgentsException"/>. The enumeration ends when the
    /// server closes the stream (e.g. after <c>session.deleted</c>).
    /// </summary>
    public async IAsyncEnumerable<SessionEvent> StreamAsync(string sessionId, string? lastEventId = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await using var stream = await OpenStreamAsync(sessionId, lastEventId, cancellationToken).ConfigureAwait(false);
        await foreach (var e in stream.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            yield return e;
        }
    }

    /// <summary>
    /// Opens the stream and returns once the server has answered with its headers, so a caller can open the stream
    /// first and read the history second without missing what happens in between (the SDK runners' order).
    /// </summary>
    public async Task<SessionEventStream> OpenStreamAsync(string sessionId, string? lastEventId = null, CancellationToken cancellationToken = default)
    {
        var headers = lastEventId is null ? null : new Dictionary<string, string> { ["Last-Event-ID"] = lastEventId };
        var (response, span) = await _p.OpenAsync(new ApiCall(ApiEndpoints.EventsStream, sessionId), HttpMethod.Get,
            $"/v1/sessions/{Query.Escape(sessionId)}/events/stream", null, cancellationToken, headers: headers, retry: false).ConfigureAwait(false);
        try
        {
            var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            return new SessionEventStream(response, body, span);
        }
        catch (Exception ex)
        {
            span?.Fail(ex);
            response.Dispose();
            throw;
        }
    }
}
