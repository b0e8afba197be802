using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.ControlPlane.Webhooks;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// One write transaction in progress: appends events, queues webhook deliveries, and remembers which streams and
/// long polls to wake once the transaction has committed (never before, so no one reads a write that may roll back).
/// </summary>
public sealed class WriteScope
{
    private readonly HashSet<string> _sessions = new(StringComparer.Ordinal);
    private readonly HashSet<string> _environments = new(StringComparer.Ordinal);

    public WriteScope(Sql sql, DateTimeOffset now)
    {
        Sql = sql;
        Now = now;
    }

    public Sql Sql { get; }
    public DateTimeOffset Now { get; }
    public string NowText => Timestamps.Format(Now);
    public long NowMs => Now.ToUnixTimeMilliseconds();
    public bool WebhooksQueued { get; private set; }

    /// <summary>Gives the event an id and <c>processed_at</c>, stores it, and marks its session's streams for a wake-up.</summary>
    public SessionEvent Emit(string sessionId, SessionEvent evt)
    {
        evt.Id ??= Ids.New("sevt");
        evt.ProcessedAt ??= NowText;
        Store.AppendEvent(Sql, sessionId, evt);
        _sessions.Add(sessionId);
        return evt;
    }

    public void WakeEnvironment(string environmentId) => _environments.Add(environmentId);

    public void WakeSession(string sessionId) => _sessions.Add(sessionId);

    /// <summary>Queues a webhook delivery of <paramref name="type"/> about <paramref name="resourceId"/> to every subscribed endpoint.</summary>
    public void Webhook(string type, string resourceId)
    {
        if (WebhookOutbox.Enqueue(Sql, type, resourceId, Now) > 0)
        {
            WebhooksQueued = true;
        }
    }

    internal void Publish(SignalHub sessions, SignalHub environments, WebhookDispatcher? webhooks)
    {
        foreach (var s in _sessions)
        {
            sessions.Notify(s);
        }

        foreach (var e in _environments)
        {
            environments.Notify(e);
        }

        if (WebhooksQueued)
        {
            webhooks?.Wake();
        }
    }
}
