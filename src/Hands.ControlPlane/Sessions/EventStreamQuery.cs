using Hands.ControlPlane.Infrastructure;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// A stream request: the previews it opts into (<c>event_deltas[]</c>, at most 100 of <c>agent.message</c> and
/// <c>agent.thinking</c>), and the event it resumes after (<c>Last-Event-ID</c>; empty: only new events).
/// </summary>
public sealed record EventStreamQuery(IReadOnlyList<string> Deltas, string LastEventId)
{
    private static readonly string[] DeltaTypes = [EventTypes.AgentMessage, EventTypes.AgentThinking];

    public static EventStreamQuery From(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var deltas = request.Query["event_deltas[]"].Concat(request.Query["event_deltas"]).Select(d => d ?? "").ToList();
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

        return new(deltas, request.Headers["Last-Event-ID"].ToString());
    }
}
