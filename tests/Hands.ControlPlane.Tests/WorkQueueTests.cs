using System.Collections.Concurrent;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Protocol;
using Hands.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>The work queue's semantics over HTTP: poll, ack, reclaim, heartbeat leases, stop, stats, credentials.</summary>
public sealed class WorkQueueTests
{
    [Fact]
    public async Task Creating_a_session_queues_one_item_whose_secret_carries_a_token_for_that_session_only()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        var s1 = await cp.CreateSessionAsync(env.Id, agent.Id);
        var s2 = await cp.CreateSessionAsync(env.Id, agent.Id);
        var worker = cp.Worker(key);

        var item = await worker.Work.PollAsync(env.Id, blockMs: 100, workerId: "w1");
        Assert.NotNull(item);
        Assert.Equal(s1.Id, item.Data.Id);
        Assert.Equal("session", item.Data.Type);
        Assert.Equal("queued", item.State);
        var secret = WorkSecretCodec.TryDecode(item.Secret);
        Assert.StartsWith("sk-ant-req-", secret!.SessionsToken, StringComparison.Ordinal);

        var token = cp.Client(ManagedAgentsCredential.Bearer(secret.SessionsToken!));
        Assert.Equal(s1.Id, (await token.Sessions.GetAsync(s1.Id)).Id);
        var denied = await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Sessions.GetAsync(s2.Id));
        Assert.Equal(403, denied.Status);
        var pollDenied = await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Work.PollAsync(env.Id, null));
        Assert.Equal(403, pollDenied.Status);
        // As upstream: the skills API refuses a sessions token (the orchestrator stages skills instead).
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Skills.ListVersionsAsync("skill_any"))).Status);

        // Nor can it act on the other session's item or post into it.
        var other = await worker.Work.PollAsync(env.Id, blockMs: 100, workerId: "w1");
        Assert.Equal(s2.Id, other!.Data.Id);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Events.SendAsync(s2.Id,
            [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("injected")] }]))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Work.HeartbeatAsync(env.Id, other.Id, WorkOperations.NoHeartbeat))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Work.StopAsync(env.Id, other.Id, force: true))).Status);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => token.Events.ListAsync(s2.Id))).Status);

        // retrieve shows no secret; it needs the API key
        Assert.Null((await cp.App.Work.GetAsync(env.Id, item.Id)).Secret);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => worker.Work.GetAsync(env.Id, item.Id))).Status);
    }

    [Fact]
    public async Task Reclaiming_an_item_revokes_the_sessions_token_of_the_claim_before()
    {
        var clock = new SteppedClock();
        await using var cp = await TestControlPlane.StartAsync(o => o.Time = clock);
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        var session = await cp.CreateSessionAsync(env.Id, agent.Id);
        var worker = cp.Worker(key);

        var first = await worker.Work.PollAsync(env.Id, blockMs: 100, reclaimOlderThanMs: 1000, workerId: "w1");
        var firstToken = cp.Client(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(first!.Secret)!.SessionsToken!));
        Assert.Equal(session.Id, (await firstToken.Sessions.GetAsync(session.Id)).Id);

        // Never acknowledged: after reclaim_older_than_ms the item goes to the next poller with a new token.
        clock.Advance(TimeSpan.FromSeconds(2));
        var second = await worker.Work.PollAsync(env.Id, blockMs: 100, reclaimOlderThanMs: 1000, workerId: "w2");
        Assert.Equal(first.Id, second!.Id);
        var secondToken = cp.Client(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(second.Secret)!.SessionsToken!));
        Assert.Equal(401, (await Assert.ThrowsAsync<ManagedAgentsException>(() => firstToken.Sessions.GetAsync(session.Id))).Status);
        Assert.Equal(session.Id, (await secondToken.Sessions.GetAsync(session.Id)).Id);
    }

    /// <summary>A clock the test moves: the reclaim window passes without the test sleeping.</summary>
    private sealed class SteppedClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    [Fact]
    public async Task Empty_poll_is_200_json_null_and_block_ms_is_bounded()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var headers = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key };
        var (status, body, response) = await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/poll?block_ms=5", headers: new(headers));
        Assert.Equal(200, status);
        Assert.Equal(System.Text.Json.JsonValueKind.Null, body.ValueKind);
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(400, (await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/poll?block_ms=0", headers: new(headers))).Status);
        Assert.Equal(400, (await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/poll?block_ms=1000", headers: new(headers))).Status);
        Assert.Equal(400, (await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/poll?reclaim_older_than_ms=0", headers: new(headers))).Status);
    }

    [Fact]
    public async Task A_long_poll_returns_as_soon_as_work_arrives()
    {
        // The control plane's clock never moves: the poll's 999 ms can never run out, so only the new work can end it.
        var frozen = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cp = await TestControlPlane.StartAsync(o => o.Time = frozen);
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        var worker = cp.Worker(key);
        var poll = worker.Work.PollAsync(env.Id, blockMs: 999, workerId: "w");
        // Until the poll has subscribed: the session below must arrive while it waits.
        await Eventually.TrueAsync(() => cp.Server.Core.EnvironmentSignals.KeyCount > 0 || poll.IsCompleted, "the poll to subscribe to its environment's wake-ups", TimeSpan.FromSeconds(30));

        Assert.False(poll.IsCompleted);
        var session = await cp.CreateSessionAsync(env.Id, agent.Id);
        var item = await poll.WaitAsync(TimeSpan.FromSeconds(30)); // bounds a hang; with a frozen clock nothing else ends it
        Assert.Equal(session.Id, item?.Data.Id);
    }

    [Fact]
    public async Task Concurrent_pollers_never_share_an_item_and_unacked_items_are_redelivered()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        const int sessions = 12;
        for (var i = 0; i < sessions; i++)
        {
            await cp.CreateSessionAsync(env.Id, agent.Id);
        }

        var claims = new ConcurrentBag<(string Worker, string Work)>();
        var dropped = new ConcurrentBag<string>();
        async Task Poller(string name, bool dieBeforeAck)
        {
            var client = cp.Worker(key);
            for (var attempt = 0; attempt < 60 && claims.Count < sessions; attempt++)
            {
                var item = await client.Work.PollAsync(env.Id, blockMs: 50, reclaimOlderThanMs: 300, workerId: name);
                if (item is null)
                {
                    continue;
                }

                if (dieBeforeAck && dropped.IsEmpty)
                {
                    dropped.Add(item.Id); // this poller "dies": the item must come back to someone else
                    return;
                }

                await client.Work.AckAsync(env.Id, item.Id);
                claims.Add((name, item.Id));
            }
        }

        await Task.WhenAll(Enumerable.Range(0, 4).Select(i => Poller("w" + i, dieBeforeAck: i == 0)));
        Assert.Equal(sessions, claims.Count);
        Assert.Equal(sessions, claims.Select(c => c.Work).Distinct().Count());
        Assert.Contains(Assert.Single(dropped), claims.Select(c => c.Work));
        var stats = await cp.App.Work.StatsAsync(env.Id);
        Assert.Equal(0, stats.Depth);
        Assert.Equal(0, stats.Pending);
        Assert.Equal(4, stats.WorkersPolling);
    }

    [Fact]
    public async Task Heartbeats_chain_on_last_heartbeat_and_a_stale_echo_is_412_with_the_current_state()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key, worker, item) = await cp.PolledItemAsync();
        var acked = await worker.Work.AckAsync(env.Id, item.Id);
        Assert.Equal("starting", acked.State);
        Assert.NotNull(acked.AcknowledgedAt);

        var first = await worker.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat);
        Assert.True(first.LeaseExtended);
        Assert.Equal("active", first.State);
        Assert.Equal(60, first.TtlSeconds);
        var second = await worker.Work.HeartbeatAsync(env.Id, item.Id, first.LastHeartbeat!, desiredTtlSeconds: 30);
        Assert.Equal(30, second.TtlSeconds);
        Assert.NotEqual(first.LastHeartbeat, second.LastHeartbeat);

        var stale = await Assert.ThrowsAsync<HeartbeatPreconditionFailedException>(() =>
            worker.Work.HeartbeatAsync(env.Id, item.Id, first.LastHeartbeat!));
        Assert.Equal(412, stale.Status);
        Assert.Equal("active", stale.CurrentState!.State);
        Assert.Equal(second.LastHeartbeat, stale.CurrentState.LastHeartbeat);
        Assert.Equal("heartbeat_precondition_failed", stale.Details!.Value.GetProperty("error_code").GetString());

        // NO_HEARTBEAT takes the lease over (the orchestrator-to-worker hand-off); the old holder then gets 412.
        var takeover = await worker.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat);
        Assert.True(takeover.LeaseExtended);
        await Assert.ThrowsAsync<HeartbeatPreconditionFailedException>(() => worker.Work.HeartbeatAsync(env.Id, item.Id, second.LastHeartbeat!));
        var started = await cp.App.Work.GetAsync(env.Id, item.Id);
        Assert.NotNull(started.StartedAt);
        Assert.Equal(takeover.LastHeartbeat, started.LatestHeartbeatAt);
    }

    [Fact]
    public async Task Graceful_stop_is_seen_at_the_next_heartbeat_force_stop_ends_it_and_a_second_stop_is_409()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key, worker, item) = await cp.PolledItemAsync();
        await worker.Work.AckAsync(env.Id, item.Id);
        var beat = await worker.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat);

        var (status, body, response) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/environments/{env.Id}/work/{item.Id}/stop", "{}");
        Assert.Equal(204, status);
        Assert.Equal(0, response.Content.Headers.ContentLength ?? 0);
        var told = await worker.Work.HeartbeatAsync(env.Id, item.Id, beat.LastHeartbeat!);
        Assert.Equal("stopping", told.State);
        Assert.False(told.LeaseExtended);

        var secretClient = cp.Client(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!));
        Assert.True(await secretClient.Work.StopAsync(env.Id, item.Id, force: true));
        Assert.Equal("stopped", (await cp.App.Work.GetAsync(env.Id, item.Id)).State);
        Assert.False(await worker.Work.StopAsync(env.Id, item.Id, force: true));
        var (again, againBody, _) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/environments/{env.Id}/work/{item.Id}/stop", """{"force":true}""");
        Assert.Equal(409, again);
        Assert.Equal("conflict_error", againBody.GetProperty("error").GetProperty("type").GetString());

        // the item's token dies with it
        Assert.Equal(401, (await Assert.ThrowsAsync<ManagedAgentsException>(() => secretClient.Sessions.GetAsync(item.Data.Id))).Status);
    }

    [Fact]
    public async Task A_lapsed_lease_puts_the_item_back_for_another_worker()
    {
        await using var cp = await TestControlPlane.StartAsync(o => o.LeaseTtl = TimeSpan.FromSeconds(1));
        var (env, key, dead, item) = await cp.PolledItemAsync();
        await dead.Work.AckAsync(env.Id, item.Id);
        var beat = await dead.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat, desiredTtlSeconds: 1);
        // the worker dies; nobody heartbeats
        WorkItem? again = null;
        var next = cp.Worker(key);
        for (var i = 0; i < 40 && again is null; i++)
        {
            again = await next.Work.PollAsync(env.Id, blockMs: 200, workerId: "w2");
        }

        Assert.Equal(item.Id, again?.Id);
        await next.Work.AckAsync(env.Id, again!.Id);
        Assert.True((await next.Work.HeartbeatAsync(env.Id, again.Id, WorkOperations.NoHeartbeat)).LeaseExtended);
        await Assert.ThrowsAsync<HeartbeatPreconditionFailedException>(() => dead.Work.HeartbeatAsync(env.Id, item.Id, beat.LastHeartbeat!));
    }

    [Fact]
    public async Task A_dormant_session_gets_a_new_item_when_it_receives_a_message_and_only_one_live_item_at_a_time()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "hi");
        var worker = cp.Worker(key);
        var item = (await worker.Work.PollAsync(env.Id, 100))!;
        await cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("again")]);
        Assert.Single((await worker.Work.ListAsync(env.Id)).Data);

        await worker.Work.AckAsync(env.Id, item.Id);
        await worker.Work.StopAsync(env.Id, item.Id, force: true);
        await cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("wake up")]);
        var items = (await worker.Work.ListAsync(env.Id)).Data;
        Assert.Equal(2, items.Count);
        Assert.Equal("queued", items[0].State);
        Assert.Equal(session.Id, items[0].Data.Id);
    }

    [Fact]
    public async Task Work_metadata_merges_and_list_rejects_the_api_key()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _, _, item) = await cp.PolledItemAsync();
        await cp.App.Work.UpdateAsync(env.Id, item.Id, new UpdateWorkRequest { Metadata = { ["a"] = "1", ["b"] = "2" } });
        var updated = await cp.App.Work.UpdateAsync(env.Id, item.Id, new UpdateWorkRequest { Metadata = { ["a"] = null, ["c"] = "3" } });
        Assert.Equal(new Dictionary<string, string> { ["b"] = "2", ["c"] = "3" }, updated.Metadata);
        Assert.Equal(403, (await Assert.ThrowsAsync<ManagedAgentsException>(() => cp.App.Work.ListAsync(env.Id))).Status);
    }
}
