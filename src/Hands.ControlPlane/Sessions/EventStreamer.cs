using System.Text;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// <c>GET /v1/sessions/{id}/events/stream</c>: Server-Sent Events, each frame <c>event: TYPE</c>, <c>id: EVENT_ID</c>,
/// <c>data: JSON</c> (with <c>type</c> inside too). Only events after the connection opens are sent, unless the client
/// sends <c>Last-Event-ID</c>, which resumes after that event. Idle streams get <c>event: ping</c>. The stream ends
/// after <c>session.deleted</c>. Events are read from the database in pages, so memory stays flat however long it runs.
/// </summary>
public sealed class EventStreamer(ControlPlaneCore core)
{
    private static readonly string[] DeltaTypes = [EventTypes.AgentMessage, EventTypes.AgentThinking];

    public async Task StreamAsync(HttpContext context, string sessionId)
    {
        var caller = Caller.Of(context);
        var deltas = context.Request.Query["event_deltas[]"].Concat(context.Request.Query["event_deltas"]).ToList();
        if (deltas.Count > 100)
        {
            throw ApiException.Invalid("event_deltas: at most 100 values are allowed");
        }

        foreach (var d in deltas)
        {
            if (Array.IndexOf(DeltaTypes, d) < 0)
            {
                throw ApiException.Invalid($"event_deltas: '{d}' is not supported; supported: {string.Join(", ", DeltaTypes)}");
            }
        }

        var lastEventId = context.Request.Headers["Last-Event-ID"].ToString();
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

        var response = context.Response;
        response.StatusCode = 200;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        await response.Body.FlushAsync(context.RequestAborted);

        var ct = context.RequestAborted;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                var batch = core.Read(sql => Store.EventsAfter(sql, sessionId, position, 500));
                if (batch.Count > 0)
                {
                    var sb = new StringBuilder();
                    var ended = false;
                    foreach (var (seq, type, json) in batch)
                    {
                        var id = ExtractId(json);
                        sb.Append("event: ").Append(type).Append('\n');
                        if (id is not null)
                        {
                            sb.Append("id: ").Append(id).Append('\n');
                        }

                        sb.Append("data: ").Append(json).Append("\n\n");
                        position = seq;
                        if (type == EventTypes.SessionDeleted)
                        {
                            ended = true;
                            break;
                        }
                    }

                    await response.WriteAsync(sb.ToString(), ct);
                    await response.Body.FlushAsync(ct);
                    if (ended)
                    {
                        return;
                    }

                    continue;
                }

                if (!await waiter.WaitAsync(core.Options.StreamPingInterval, ct))
                {
                    await response.WriteAsync("event: ping\ndata: {\"type\":\"ping\"}\n\n", ct);
                    await response.Body.FlushAsync(ct);
                }
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // client disconnected
        }
    }

    private static string? ExtractId(string json)
    {
        const string marker = "\"id\":\"";
        var start = json.IndexOf(marker, StringComparison.Ordinal);
        if (start < 0)
        {
            return null;
        }

        start += marker.Length;
        var end = json.IndexOf('"', start);
        return end > start ? json[start..end] : null;
    }
}
