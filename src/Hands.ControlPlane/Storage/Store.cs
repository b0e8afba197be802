using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Microsoft.Data.Sqlite;

namespace Hands.ControlPlane.Storage;

/// <summary>Typed reads and writes of every resource. Methods take the <see cref="Sql"/> of the caller's transaction.</summary>
public static class Store
{
    private static readonly ProtocolJsonContext Json = ProtocolJsonContext.Default;

    public static string Serialize<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);

    public static T Deserialize<T>(string json, JsonTypeInfo<T> type) =>
        JsonSerializer.Deserialize(json, type) ?? throw new InvalidDataException("stored JSON is null");

    // settings

    public static string? GetSetting(Sql sql, string key) => sql.Scalar<string>("SELECT value FROM settings WHERE key=$k", ("$k", key));

    public static void SetSetting(Sql sql, string key, string value) =>
        sql.Exec("INSERT INTO settings(key,value) VALUES($k,$v) ON CONFLICT(key) DO UPDATE SET value=excluded.value", ("$k", key), ("$v", value));

    // environments

    public static AgentEnvironment? GetEnvironment(Sql sql, string id) =>
        sql.One("SELECT json FROM environments WHERE id=$id", r => Deserialize(r.GetString(0), Json.AgentEnvironment), ("$id", id));

    public static void PutEnvironment(Sql sql, AgentEnvironment env) =>
        sql.Exec("INSERT INTO environments(id,archived,json) VALUES($id,$a,$j) ON CONFLICT(id) DO UPDATE SET archived=excluded.archived, json=excluded.json",
            ("$id", env.Id), ("$a", env.ArchivedAt is null ? 0 : 1), ("$j", Serialize(env, Json.AgentEnvironment)));

    // agents

    public static Agent? GetAgent(Sql sql, string id, int? version = null) =>
        version is null
            ? sql.One("SELECT v.json FROM agents a JOIN agent_versions v ON v.agent_id=a.id AND v.version=a.version WHERE a.id=$id",
                r => Deserialize(r.GetString(0), Json.Agent), ("$id", id))
            : sql.One("SELECT json FROM agent_versions WHERE agent_id=$id AND version=$v",
                r => Deserialize(r.GetString(0), Json.Agent), ("$id", id), ("$v", version.Value));

    public static void PutAgentVersion(Sql sql, Agent agent)
    {
        sql.Exec("INSERT OR REPLACE INTO agent_versions(agent_id,version,json) VALUES($id,$v,$j)",
            ("$id", agent.Id), ("$v", agent.Version), ("$j", Serialize(agent, Json.Agent)));
        sql.Exec("INSERT INTO agents(id,version,archived) VALUES($id,$v,$a) ON CONFLICT(id) DO UPDATE SET version=excluded.version, archived=excluded.archived",
            ("$id", agent.Id), ("$v", agent.Version), ("$a", agent.ArchivedAt is null ? 0 : 1));
    }

    // sessions

    public static StoredSession? GetSession(Sql sql, string id, bool includeDeleted = false) =>
        sql.One("SELECT json, loop, deleted_at_ms FROM sessions WHERE id=$id" + (includeDeleted ? "" : " AND deleted_at_ms IS NULL"),
            r => new StoredSession(Deserialize(r.GetString(0), Json.Session), LoopState.Parse(r.GetString(1)), !r.IsDBNull(2)),
            ("$id", id));

    public static void PutSession(Sql sql, Session session, LoopState loop) =>
        sql.Exec("""
            INSERT INTO sessions(id,environment_id,agent_id,status,archived,json,loop) VALUES($id,$e,$a,$s,$ar,$j,$l)
            ON CONFLICT(id) DO UPDATE SET status=excluded.status, archived=excluded.archived, json=excluded.json, loop=excluded.loop
            """,
            ("$id", session.Id), ("$e", session.EnvironmentId), ("$a", session.Agent.Id), ("$s", session.Status),
            ("$ar", session.ArchivedAt is null ? 0 : 1), ("$j", Serialize(session, Json.Session)), ("$l", loop.ToJson()));

    // events

    /// <summary>Appends an event; returns its sequence number (the stream and list order).</summary>
    public static long AppendEvent(Sql sql, string sessionId, SessionEvent evt) =>
        sql.Scalar<long>("INSERT INTO events(id,session_id,type,json) VALUES($id,$s,$t,$j) RETURNING seq",
            ("$id", evt.Id), ("$s", sessionId), ("$t", evt.Type), ("$j", Serialize(evt, Json.SessionEvent)));

    public static SessionEvent? GetEvent(Sql sql, string sessionId, string eventId) =>
        sql.One("SELECT json FROM events WHERE id=$id AND session_id=$s", r => Deserialize(r.GetString(0), Json.SessionEvent),
            ("$id", eventId), ("$s", sessionId));

    public static long? EventSeq(Sql sql, string sessionId, string eventId) =>
        sql.Scalar<long?>("SELECT seq FROM events WHERE id=$id AND session_id=$s", ("$id", eventId), ("$s", sessionId));

    public static long LastEventSeq(Sql sql, string sessionId) =>
        sql.Scalar<long?>("SELECT MAX(seq) FROM events WHERE session_id=$s", ("$s", sessionId)) ?? 0;

    /// <summary>Events after <paramref name="afterSeq"/> as stored (raw JSON), ascending, at most <paramref name="limit"/>.</summary>
    public static List<StoredEvent> EventsAfter(Sql sql, string sessionId, long afterSeq, int limit) =>
        sql.Query("SELECT seq, id, type, json FROM events WHERE session_id=$s AND seq>$after ORDER BY seq LIMIT $n",
            r => new StoredEvent(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3)), ("$s", sessionId), ("$after", afterSeq), ("$n", limit));

    public static bool HasEventOfType(Sql sql, string sessionId, string type, string field, string value) =>
        sql.Scalar<long>($"SELECT COUNT(*) FROM events WHERE session_id=$s AND type=$t AND json_extract(json, '$.{field}')=$v",
            ("$s", sessionId), ("$t", type), ("$v", value)) > 0;

    // work

    public static StoredWork? GetWork(Sql sql, string id) =>
        sql.One("SELECT json, claimed_at_ms, claimed_by, last_heartbeat, ttl_seconds, lease_expires_ms FROM work WHERE id=$id",
            ReadWork, ("$id", id));

    internal static StoredWork ReadWork(SqliteDataReader r) => new(
        Deserialize(r.GetString(0), Json.WorkItem),
        r.IsDBNull(1) ? null : r.GetInt64(1),
        r.IsDBNull(2) ? null : r.GetString(2),
        r.IsDBNull(3) ? null : r.GetString(3),
        r.IsDBNull(4) ? null : r.GetInt32(4),
        r.IsDBNull(5) ? null : r.GetInt64(5));

    public static void PutWork(Sql sql, StoredWork w) =>
        sql.Exec("""
            INSERT INTO work(id,environment_id,session_id,state,claimed_at_ms,claimed_by,last_heartbeat,ttl_seconds,lease_expires_ms,json)
            VALUES($id,$e,$s,$st,$c,$cb,$lh,$ttl,$le,$j)
            ON CONFLICT(id) DO UPDATE SET state=excluded.state, claimed_at_ms=excluded.claimed_at_ms, claimed_by=excluded.claimed_by,
              last_heartbeat=excluded.last_heartbeat, ttl_seconds=excluded.ttl_seconds, lease_expires_ms=excluded.lease_expires_ms, json=excluded.json
            """,
            ("$id", w.Item.Id), ("$e", w.Item.EnvironmentId), ("$s", w.Item.Data.Id), ("$st", w.Item.State), ("$c", w.ClaimedAtMs),
            ("$cb", w.ClaimedBy), ("$lh", w.LastHeartbeat), ("$ttl", w.TtlSeconds), ("$le", w.LeaseExpiresMs),
            ("$j", Serialize(w.Item, Json.WorkItem)));

    public static StoredWork? LiveWorkForSession(Sql sql, string sessionId) =>
        sql.One("""
            SELECT json, claimed_at_ms, claimed_by, last_heartbeat, ttl_seconds, lease_expires_ms FROM work
            WHERE session_id=$s AND state IN ('queued','starting','active') ORDER BY rowid DESC LIMIT 1
            """, ReadWork, ("$s", sessionId));
}

/// <summary>A session row: the API object, the scripted loop's state, and whether it was deleted.</summary>
public sealed record StoredSession(Session Session, LoopState Loop, bool Deleted);

/// <summary>A work row: the API object plus the lease bookkeeping the API does not show.</summary>
public sealed record StoredWork(WorkItem Item, long? ClaimedAtMs, string? ClaimedBy, string? LastHeartbeat, int? TtlSeconds, long? LeaseExpiresMs);

/// <summary>An event row: its stream position, its id and type as columns, and the event's JSON exactly as stored.</summary>
public sealed record StoredEvent(long Seq, string Id, string Type, string Json);
