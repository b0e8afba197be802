using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// <c>GET /v1/sessions/{id}/events/stream</c>: Server-Sent Events, each frame <c>event: TYPE</c>, <c>data: JSON</c>
/// (with <c>type</c> inside too), <c>id: EVENT_ID</c>. Only events after the connection opens are sent, unless the
/// client sends <c>Last-Event-ID</c>, which resumes after that event. Idle streams get <c>event: ping</c>. The stream
/// ends after <c>session.deleted</c>. Events are read from the database in pages, so memory stays flat however long it runs.
/// </summary>
public sealed class EventStreamer(ControlPlaneCore core)
{
    private const int PageSize = 500;
    private const string PingData = "{\"type\":\"ping\"}";
    /// <summary>Checks the caller, then streams the session's events into <paramref name="response"/> until the session is deleted or the client leaves.</summary>
    public async Task StreamAsync(Caller caller, string sessionId, EventStreamQuery query, HttpResponse response, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(response);
        var lastEventId = query.LastEventId;
        using var waiter = core.SessionSignals.Subscribe(sessionId);
        var position = core.Read(sql =>
        {
            var stored = Store.GetSession(sql, sessionId) ?? throw SessionService.SessionNotFound(sessionId);
            caller.RequireSession(sessionId, stored.Session.EnvironmentId);
            if (lastEventId.Length > 0)
            {
                return Store.EventSeq(sql, sessionId, lastEventId)
                    ?? throw ApiException.Invalid($"Last-Event-ID: no event {lastEventId} in session {sessionId}");
            }

            return Store.LastEventSeq(sql, sessionId);
        });

        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";

        // The headers go out before the first frame: a client waits for them before it reads, however quiet the session.
        try
        {
            await response.Body.FlushAsync(ct);
            await SseFormatter.WriteAsync(FramesAsync(sessionId, position, waiter, ct), response.Body, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // client disconnected
        }
    }

    private async IAsyncEnumerable<SseItem<string>> FramesAsync(string sessionId, long position, SignalHub.Waiter waiter, [EnumeratorCancellation] CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            var page = core.Read(sql => Store.EventsAfter(sql, sessionId, position, PageSize));
            foreach (var evt in page)
            {
                position = evt.Seq;
                yield return new SseItem<string>(evt.Json, evt.Type) { EventId = evt.Id };
                if (evt.Type == EventTypes.SessionDeleted)
                {
                    yield break;
                }
            }

            if (page.Count == 0 && !await waiter.WaitAsync(core.Options.StreamPingInterval, ct))
            {
                yield return new SseItem<string>(PingData, "ping");
            }
        }
    }
}
