using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Environments;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Sessions;
using Hands.ControlPlane.Storage;
using Hands.Protocol;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Work;

/// <summary>
/// The work queue of self-hosted environments, with the hosted service's semantics:
/// <list type="bullet">
/// <item>an item is queued when a session is created, and again when a session with no live item gets input;</item>
/// <item>poll hands out the oldest queued item (or one polled but not acknowledged for <c>reclaim_older_than_ms</c>),
/// long-polling up to <c>block_ms</c> (1-999); an empty poll is 200 with JSON <c>null</c>;</item>
/// <item>ack: queued → starting; the first heartbeat: → active; a lease not renewed within its TTL lapses and the item
/// is queued again for another worker;</item>
/// <item>heartbeat compares <c>expected_last_heartbeat</c>: <c>NO_HEARTBEAT</c> claims the lease (taking it over from
/// whoever held it, which is how an orchestrator hands an item to the worker it started), any other value must equal
/// the stored one or the answer is 412 with <c>error.details.current_state</c>;</item>
/// <item>stop: graceful → stopping (seen on the next heartbeat), force → stopped; 409 if already stopped; 204.</item>
/// </list>
/// Decisions on what the reference leaves open are recorded in docs/control-plane.md.
/// </summary>
public sealed class WorkService(ControlPlaneCore core)
{
    public const string SessionsTokenPrefix = "sk-ant-req-";
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<string, long>> _pollers = new(StringComparer.Ordinal);

    /// <summary>Queues a new work item for the session.</summary>
    public static WorkItem Enqueue(WriteScope scope, Session session)
    {
        var item = new WorkItem
        {
            Id = Ids.New("work"),
            EnvironmentId = session.EnvironmentId,
            Data = new WorkData { Type = "session", Id = session.Id },
            State = WorkState.Queued,
            CreatedAt = scope.NowText,
        };
        Store.PutWork(scope.Sql, new StoredWork(item, null, null, null, null, null));
        scope.WakeEnvironment(session.EnvironmentId);
        return item;
    }

    /// <summary>Force-stops every live item of a session (archive, delete).</summary>
    public static void StopSessionWork(WriteScope scope, string sessionId)
    {
        var live = scope.Sql.Query("SELECT json, claimed_at_ms, claimed_by, last_heartbeat, ttl_seconds, lease_expires_ms FROM work WHERE session_id=$s AND state<>'stopped'",
            Store.ReadWork, ("$s", sessionId));
        foreach (var w in live)
        {
            MarkStopped(scope, w);
        }
    }

    private static void MarkStopped(WriteScope scope, StoredWork w)
    {
        w.Item.State = WorkState.Stopped;
        w.Item.StoppedAt = scope.NowText;
        w.Item.StopRequestedAt ??= scope.NowText;
        Store.PutWork(scope.Sql, w with { LeaseExpiresMs = null });
        scope.Sql.Exec("UPDATE sessions_tokens SET revoked=1 WHERE work_id=$w", ("$w", w.Item.Id));
    }

    public async Task<WorkItem?> PollAsync(Caller caller, string environmentId, WorkPollQuery poll, CancellationToken ct)
    {
        if (caller.Kind == CallerKind.SessionsToken)
        {
            throw ApiException.Forbidden("A sessions token cannot poll for work; poll with the environment key.");
        }

        caller.RequireEnvironment(environmentId);
        var (blockMs, reclaimOlderThanMs, workerId, baseUrl) = poll;
        var reclaimMs = reclaimOlderThanMs ?? (long)core.Options.DefaultReclaim.TotalMilliseconds;
        var environment = core.Read(sql => Store.GetEnvironment(sql, environmentId)) ?? throw EnvironmentService.NotFound(environmentId);
        if (!environment.IsSelfHosted)
        {
            throw ApiException.Invalid($"environment {environmentId} is not self_hosted; only self-hosted environments have a work queue");
        }

        RecordPoller(environmentId, workerId);
        using var waiter = core.EnvironmentSignals.Subscribe(environmentId);
        var deadline = core.Now.AddMilliseconds(blockMs ?? 0);
        while (true)
        {
            var claimed = await core.WriteAsync(scope => TryClaim(scope, environmentId, reclaimMs, workerId, baseUrl), ct);
            if (claimed is not null)
            {
                return claimed;
            }

            var remaining = deadline - core.Now;
            if (remaining <= TimeSpan.Zero)
            {
                return null;
            }

            // Wake on new work, or when a polled-but-unacknowledged item becomes reclaimable.
            var reclaimWake = core.Read(sql => sql.Scalar<long?>(
                "SELECT MIN(claimed_at_ms) FROM work WHERE environment_id=$e AND state='queued' AND claimed_at_ms IS NOT NULL", ("$e", environmentId)));
            if (reclaimWake is { } oldest)
            {
                var until = TimeSpan.FromMilliseconds(Math.Max(1, oldest + reclaimMs - core.Now.ToUnixTimeMilliseconds()));
                remaining = until < remaining ? until : remaining;
            }

            await waiter.WaitAsync(remaining, ct);
        }
    }

    private static WorkItem? TryClaim(WriteScope scope, string environmentId, long reclaimMs, string workerId, string baseUrl)
    {
        var w = scope.Sql.One("""
            SELECT json, claimed_at_ms, claimed_by, last_heartbeat, ttl_seconds, lease_expires_ms FROM work
            WHERE environment_id=$e AND state='queued' AND (claimed_at_ms IS NULL OR claimed_at_ms <= $cutoff)
            ORDER BY rowid LIMIT 1
            """, Store.ReadWork, ("$e", environmentId), ("$cutoff", scope.NowMs - reclaimMs));
        if (w is null)
        {
            return null;
        }

        Store.PutWork(scope.Sql, w with { ClaimedAtMs = scope.NowMs, ClaimedBy = workerId.Length > 0 ? workerId : null });
        // A reclaim hands the item to someone else: whoever held the earlier claim's token holds nothing now.
        scope.Sql.Exec("UPDATE sessions_tokens SET revoked=1 WHERE work_id=$w", ("$w", w.Item.Id));
        var token = Ids.Secret(SessionsTokenPrefix);
        scope.Sql.Exec("INSERT INTO sessions_tokens(hash,work_id,session_id,environment_id) VALUES($h,$w,$s,$e)",
            ("$h", Ids.Hash(token)), ("$w", w.Item.Id), ("$s", w.Item.Data.Id), ("$e", environmentId));
        var copy = Clone(w.Item);
        copy.Secret = WorkSecretCodec.Encode(new WorkSecret { SessionsToken = token, ApiBaseUrl = baseUrl });
        return copy;
    }

    private void RecordPoller(string environmentId, string workerId)
    {
        if (workerId.Length == 0)
        {
            return;
        }

        var now = core.Now.ToUnixTimeMilliseconds();
        var pollers = _pollers.GetOrAdd(environmentId, _ => new ConcurrentDictionary<string, long>(StringComparer.Ordinal));
        pollers[workerId] = now;
        foreach (var (id, seen) in pollers)
        {
            if (now - seen > 30_000)
            {
                pollers.TryRemove(id, out _);
            }
        }
    }

    public async Task<WorkItem> AckAsync(Caller caller, string environmentId, string workId, CancellationToken ct)
    {
        caller.RequireWork(environmentId, workId);
        return await core.WriteAsync(scope =>
        {
            var w = Load(scope.Sql, environmentId, workId);
            if (w.Item.State != WorkState.Queued)
            {
                throw ApiException.Conflict($"work item {workId} is {w.Item.State}; only a queued item can be acknowledged");
            }

            if (w.ClaimedAtMs is null)
            {
                throw ApiException.Conflict($"work item {workId} has not been polled; poll it before acknowledging it");
            }

            w.Item.State = WorkState.Starting;
            w.Item.AcknowledgedAt = scope.NowText;
            var ttl = (int)core.Options.LeaseTtl.TotalSeconds;
            Store.PutWork(scope.Sql, w with { TtlSeconds = ttl, LeaseExpiresMs = scope.NowMs + ttl * 1000L, LastHeartbeat = null });
            scope.WakeEnvironment(environmentId);
            return w.Item;
        }, ct);
    }

    public async Task<WorkHeartbeat> HeartbeatAsync(Caller caller, string environmentId, string workId, HeartbeatQuery heartbeat, CancellationToken ct)
    {
        caller.RequireWork(environmentId, workId);
        var (expected, desired) = heartbeat;

        return await core.WriteAsync(scope =>
        {
            var w = Load(scope.Sql, environmentId, workId);
            var state = w.Item.State;
            if (state is WorkState.Stopping or WorkState.Stopped)
            {
                // Once stopping, the server no longer compares the lease: it only tells the holder to wind down.
                return new WorkHeartbeat { LastHeartbeat = w.LastHeartbeat, LeaseExtended = false, State = state, TtlSeconds = w.TtlSeconds ?? 0 };
            }

            var claim = expected == Hands.Protocol.Client.WorkOperations.NoHeartbeat;
            if (state == WorkState.Queued || (!claim && expected != w.LastHeartbeat))
            {
                var current = new WorkHeartbeat { LastHeartbeat = w.LastHeartbeat, LeaseExtended = false, State = state, TtlSeconds = w.TtlSeconds ?? 0 };
                var details = JsonSerializer.SerializeToElement(new HeartbeatPreconditionDetails { CurrentState = current },
                    ProtocolJsonContext.Default.HeartbeatPreconditionDetails);
                var reason = state == WorkState.Queued
                    ? $"work item {workId} is queued: its lease lapsed or it was never acknowledged"
                    : "expected_last_heartbeat does not match: another worker holds the lease of this work item";
                throw new ApiException(412, ErrorTypes.PreconditionFailed, reason, details, shouldRetry: false);
            }

            var ttl = desired is { } d
                ? (int)Math.Clamp(d, core.Options.MinLeaseTtl.TotalSeconds, core.Options.MaxLeaseTtl.TotalSeconds)
                : (int)core.Options.LeaseTtl.TotalSeconds;
            var beat = NextHeartbeat(scope.Now, w.LastHeartbeat);
            if (state == WorkState.Starting)
            {
                w.Item.State = WorkState.Active;
                w.Item.StartedAt ??= scope.NowText;
            }

            w.Item.LatestHeartbeatAt = beat;
            Store.PutWork(scope.Sql, w with { LastHeartbeat = beat, TtlSeconds = ttl, LeaseExpiresMs = scope.NowMs + ttl * 1000L });
            return new WorkHeartbeat { LastHeartbeat = beat, LeaseExtended = true, State = w.Item.State, TtlSeconds = ttl };
        }, ct);
    }

    /// <summary>A heartbeat stamp strictly after the previous one, so that an echo always names exactly one beat.</summary>
    private static string NextHeartbeat(DateTimeOffset now, string? previous)
    {
        var stamp = now;
        if (previous is not null && Timestamps.Parse(previous) is var last && stamp <= last)
        {
            stamp = last.AddTicks(10);
        }

        return stamp.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);
    }

    public async Task StopAsync(Caller caller, string environmentId, string workId, JsonBody body, CancellationToken ct)
    {
        caller.RequireWork(environmentId, workId);
        body.OnlyFields("force");
        var force = body.OptionalBool("force") ?? false;
        await core.WriteAsync(scope =>
        {
            var w = Load(scope.Sql, environmentId, workId);
            switch (w.Item.State)
            {
                case WorkState.Stopped:
                    throw ApiException.Conflict($"work item {workId} is already stopped");
                case WorkState.Queued:
                    MarkStopped(scope, w); // nobody runs it, so there is no one to confirm a graceful stop
                    break;
                case WorkState.Stopping when !force:
                    break;
                default:
                    if (force)
                    {
                        MarkStopped(scope, w);
                    }
                    else
                    {
                        w.Item.State = WorkState.Stopping;
                        w.Item.StopRequestedAt = scope.NowText;
                        Store.PutWork(scope.Sql, w);
                    }

                    break;
            }

            scope.WakeEnvironment(environmentId);
            return 0;
        }, ct);
    }

    public WorkItem Get(Caller caller, string environmentId, string workId)
    {
        caller.RequireApiKey("retrieve work items");
        return core.Read(sql => Load(sql, environmentId, workId)).Item;
    }

    public Page<WorkItem> List(Caller caller, string environmentId, PageQuery query)
    {
        caller.RequireWorkerOf(environmentId, "list work items");
        var (limit, after) = query;
        var rows = core.Read(sql => sql.Query(
            "SELECT rowid, json FROM work WHERE environment_id=$e AND ($after IS NULL OR rowid < $after) ORDER BY rowid DESC LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.WorkItem)),
            ("$e", environmentId), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    public async Task<WorkItem> UpdateAsync(Caller caller, string environmentId, string workId, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("update work items");
        body.OnlyFields("metadata");
        var patch = body.OptionalMetadata("metadata", allowNullValues: true) ?? throw ApiException.Invalid("metadata: Field required");
        return await core.WriteAsync(scope =>
        {
            var w = Load(scope.Sql, environmentId, workId);
            foreach (var (key, value) in patch)
            {
                if (value is null)
                {
                    w.Item.Metadata.Remove(key);
                }
                else
                {
                    w.Item.Metadata[key] = value;
                }
            }

            Store.PutWork(scope.Sql, w);
            return w.Item;
        }, ct);
    }

    public WorkQueueStats Stats(Caller caller, string environmentId)
    {
        caller.RequireEnvironment(environmentId, allowSessionsToken: false);
        var stats = core.Read(sql =>
        {
            _ = Store.GetEnvironment(sql, environmentId) ?? throw EnvironmentService.NotFound(environmentId);
            // RFC 3339 UTC timestamps of one format order as strings, so MIN is the oldest.
            return sql.One("""
                SELECT SUM(claimed_at_ms IS NULL), SUM(claimed_at_ms IS NOT NULL), MIN(json_extract(json, '$.created_at'))
                FROM work WHERE environment_id=$e AND state='queued'
                """, r => new WorkQueueStats
            {
                Depth = r.IsDBNull(0) ? 0 : r.GetInt32(0),
                Pending = r.IsDBNull(1) ? 0 : r.GetInt32(1),
                OldestQueuedAt = r.IsDBNull(2) ? null : r.GetString(2),
            }, ("$e", environmentId))!;
        });
        var now = core.Now.ToUnixTimeMilliseconds();
        stats.WorkersPolling = _pollers.TryGetValue(environmentId, out var pollers) ? pollers.Values.Count(seen => now - seen <= 30_000) : 0;
        return stats;
    }

    /// <summary>
    /// Expires lapsed leases: an acknowledged item whose lease was not renewed within its TTL goes back to the queue
    /// (its tokens revoked, its lease cleared) so another worker can finish the session; a stopping one is stopped.
    /// </summary>
    public int SweepLeases()
    {
        return core.Write(scope =>
        {
            var lapsed = scope.Sql.Query("""
                SELECT json, claimed_at_ms, claimed_by, last_heartbeat, ttl_seconds, lease_expires_ms FROM work
                WHERE state IN ('starting','active','stopping') AND lease_expires_ms IS NOT NULL AND lease_expires_ms < $now
                """, Store.ReadWork, ("$now", scope.NowMs));
            foreach (var w in lapsed)
            {
                if (w.Item.State == WorkState.Stopping)
                {
                    MarkStopped(scope, w);
                    continue;
                }

                w.Item.State = WorkState.Queued;
                w.Item.AcknowledgedAt = null;
                Store.PutWork(scope.Sql, w with { ClaimedAtMs = null, ClaimedBy = null, LastHeartbeat = null, LeaseExpiresMs = null });
                scope.Sql.Exec("UPDATE sessions_tokens SET revoked=1 WHERE work_id=$w", ("$w", w.Item.Id));
                scope.WakeEnvironment(w.Item.EnvironmentId);
            }

            return lapsed.Count;
        });
    }

    private static StoredWork Load(Sql sql, string environmentId, string workId)
    {
        var w = Store.GetWork(sql, workId);
        return w is null || w.Item.EnvironmentId != environmentId
            ? throw ApiException.NotFound($"work item {workId} not found in environment {environmentId}")
            : w;
    }

    private static WorkItem Clone(WorkItem item) =>
        Store.Deserialize(Store.Serialize(item, ProtocolJsonContext.Default.WorkItem), ProtocolJsonContext.Default.WorkItem);
}
