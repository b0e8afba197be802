using System.Text.Json;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>The scripted agent loop and session lifecycle, driven over HTTP as a worker and an app would.</summary>
public sealed class SessionLoopTests
{
    [Fact]
    public async Task Demo_scenario_waits_for_each_tool_result_and_renders_results_into_its_message()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:demo");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id);
        Assert.Equal("idle", session.Status);
        var worker = cp.Worker(key);

        var sent = await cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("make hello.txt")]);
        var events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "requires_action"), sent[0].Id);
        var write = events.Single(e => e.Type == EventTypes.AgentToolUse);
        Assert.Equal("write", write.Name);
        Assert.Equal("allow", write.EvaluatedPermission);
        Assert.Equal("hello.txt", write.Input!.Value.GetProperty("file_path").GetString());
        Assert.Equal([write.Id!], events[^1].StopReason!.EventIds!);
        Assert.Contains(events, e => e.Type == EventTypes.StatusRunning);
        Assert.Equal(EventTypes.SessionUsage, events[^2].Type); // usage right before every idle

        var echoed = await worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(write.Id!, "wrote 19 bytes to /workspace/hello.txt")]);
        Assert.NotNull(echoed[0].ProcessedAt);
        events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "requires_action"), echoed[0].Id);
        var read = events.Single(e => e.Type == EventTypes.AgentToolUse);
        Assert.Equal("read", read.Name);

        var result = await worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(read.Id!, "hi from the sandbox")]);
        events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), result[0].Id);
        Assert.Equal("hello.txt contains: hi from the sandbox", events.Single(e => e.Type == EventTypes.AgentMessage).Text);
        Assert.Equal("idle", (await cp.App.Sessions.GetAsync(session.Id)).Status);

        // history holds everything, in order, including the posted results
        var history = await cp.App.Events.ListAllAsync(session.Id, pageSize: 3).ToListAsync();
        Assert.Equal(2, history.Count(e => e.Type == EventTypes.UserToolResult));
        Assert.Equal(EventTypes.UserMessage, history[0].Type);
        Assert.Equal(history.Count, history.Select(e => e.Id).Distinct().Count());
        var desc = await cp.App.Events.ListAsync(session.Id, limit: 1, order: "desc");
        Assert.Equal(EventTypes.StatusIdle, desc.Data[0].Type);
    }

    [Fact]
    public async Task Ask_waits_for_confirmation_deny_resolves_without_a_result_and_results_are_not_accepted_twice()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:permissions");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        var worker = cp.Worker(key);
        var events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "requires_action"), lastEventId: (await cp.App.Events.ListAsync(session.Id, limit: 1)).Data[0].Id);
        var ask = events.Single(e => e.Type == EventTypes.AgentToolUse);
        Assert.Equal("ask", ask.EvaluatedPermission);

        var early = await Assert.ThrowsAsync<ManagedAgentsException>(() => worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(ask.Id!, "x")]));
        Assert.Equal(409, early.Status);
        var workerConfirm = await Assert.ThrowsAsync<ManagedAgentsException>(() => worker.Events.SendAsync(session.Id,
            [new SessionEvent { Type = EventTypes.UserToolConfirmation, ToolUseId = ask.Id, Result = "allow" }]));
        Assert.Equal(403, workerConfirm.Status); // a sandbox credential cannot approve its own calls

        var confirm = await cp.App.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserToolConfirmation, ToolUseId = ask.Id, Result = "allow" }]);
        Assert.Equal("running", (await cp.App.Sessions.GetAsync(session.Id)).Status);
        var answer = await worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(ask.Id!, "approved")]);
        var dup = await Assert.ThrowsAsync<ManagedAgentsException>(() => worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(ask.Id!, "again")]));
        Assert.Equal(409, dup.Status);

        events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), confirm[0].Id);
        var denied = events.Single(e => e.Type == EventTypes.AgentToolUse && e.Id != ask.Id);
        Assert.Equal("deny", denied.EvaluatedPermission);
        Assert.Equal("first: approved / second error: true", events.Single(e => e.Type == EventTypes.AgentMessage).Text);
        Assert.Equal(409, (await Assert.ThrowsAsync<ManagedAgentsException>(() =>
            worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(denied.Id!, "sneaky")]))).Status);
        _ = answer;
    }

    [Fact]
    public async Task Agent_permission_policy_always_ask_is_stamped_on_tool_uses()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:demo",
            """[{"type":"agent_toolset_20260401","default_config":{"permission_policy":{"type":"always_ask"}},"configs":[{"name":"read","permission_policy":{"type":"always_allow"}}]}]""");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        var first = (await cp.App.Events.ListAllAsync(session.Id).ToListAsync()).Single(e => e.Type == EventTypes.AgentToolUse);
        Assert.Equal("ask", first.EvaluatedPermission);
    }

    [Fact]
    public async Task Custom_tool_calls_wait_for_custom_tool_results()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:custom-tool",
            """[{"type":"custom","name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]""");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "weather?");
        var use = (await cp.App.Events.ListAllAsync(session.Id).ToListAsync()).Single(e => e.Type == EventTypes.AgentCustomToolUse);
        Assert.Equal("Lisbon", use.Input!.Value.GetProperty("city").GetString());
        var sent = await cp.Worker(key).Events.SendAsync(session.Id,
            [new SessionEvent { Type = EventTypes.UserCustomToolResult, CustomToolUseId = use.Id, Content = [ContentBlock.FromText("sunny, 21C")] }]);
        var events = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), sent[0].Id);
        Assert.Equal("The weather tool said: sunny, 21C", events.Single(e => e.Type == EventTypes.AgentMessage).Text);
    }

    [Fact]
    public async Task A_real_model_name_answers_with_a_clear_error_and_goes_idle()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("claude-sonnet-4-5");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "hello");
        var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
        var error = history.Single(e => e.Type == EventTypes.SessionError);
        Assert.Contains("No model provider is configured", error.Error!.Value.GetProperty("message").GetString(), StringComparison.Ordinal);
        Assert.Equal("retries_exhausted", history[^1].StopReason!.Type);
    }

    [Fact]
    public async Task Turns_play_in_order_queued_messages_wait_and_running_out_of_turns_is_explained()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "one");
        await cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("two"), TestControlPlane.UserMessage("three")]);
        var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
        Assert.Equal(["Hello! I am a scripted agent; I run no tools.", "Still here. This is turn two."],
            history.Where(e => e.Type == EventTypes.AgentMessage).Select(e => e.Text));
        Assert.Contains("has 2 turns", history.Single(e => e.Type == EventTypes.SessionError).Error!.Value.GetProperty("message").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Interrupt_ends_the_turn_and_archive_then_terminates_the_session_and_stops_its_work()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:demo");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        var worker = cp.Worker(key);
        var item = (await worker.Work.PollAsync(env.Id, 100))!;
        await worker.Work.AckAsync(env.Id, item.Id);

        await cp.App.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserInterrupt }]);
        var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
        Assert.Equal("end_turn", history[^1].StopReason!.Type);

        var archived = await cp.App.Sessions.ArchiveAsync(session.Id);
        Assert.Equal("terminated", archived.Status);
        Assert.NotNull(archived.ArchivedAt);
        Assert.Equal("stopped", (await cp.App.Work.GetAsync(env.Id, item.Id)).State);
        Assert.Equal(EventTypes.StatusTerminated, (await cp.App.Events.ListAsync(session.Id, limit: 1, order: "desc")).Data[0].Type);
        var late = await Assert.ThrowsAsync<ManagedAgentsException>(() => cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("hello?")]));
        Assert.Equal(400, late.Status);
        Assert.DoesNotContain(session.Id, (await cp.App.Sessions.ListAsync()).Data.Select(s => s.Id));
        Assert.Contains(session.Id, (await cp.App.Sessions.ListAsync(includeArchived: true)).Data.Select(s => s.Id));
    }

    [Fact]
    public async Task Deleting_a_session_ends_open_streams_with_session_deleted()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var collected = new List<SessionEvent>();
        var reader = Task.Run(async () =>
        {
            await foreach (var e in cp.App.Events.StreamAsync(session.Id, cancellationToken: cts.Token))
            {
                collected.Add(e);
            }
        });
        // Until the stream is open: the deletion below must end a live stream.
        await Eventually.TrueAsync(() => cp.Server.Core.SessionSignals.KeyCount > 0, "the stream to open", TimeSpan.FromSeconds(30));

        var deleted = await cp.App.Sessions.DeleteAsync(session.Id);
        Assert.Equal("session_deleted", deleted.Type);
        await reader; // the stream ended by itself
        Assert.Equal(EventTypes.SessionDeleted, collected[^1].Type);
        Assert.Equal(404, (await Assert.ThrowsAsync<ManagedAgentsException>(() => cp.App.Sessions.GetAsync(session.Id))).Status);
    }

    [Fact]
    public async Task Streams_send_only_new_events_resume_after_Last_Event_ID_and_ping_when_idle()
    {
        await using var cp = await TestControlPlane.StartAsync(o => o.StreamPingInterval = TimeSpan.FromMilliseconds(200));
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "one");
        var firstTurn = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();

        // resume from the first event: everything after it, nothing before
        var resumed = await TestControlPlane.CollectAsync(cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), firstTurn[0].Id);
        Assert.Equal(firstTurn.Skip(1).Select(e => e.Id), resumed.Select(e => e.Id));

        // a fresh stream replays no history, and pings keep it alive while idle
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(cp.BaseAddress, $"/v1/sessions/{session.Id}/events/stream"));
        request.Headers.Add("x-api-key", TestControlPlane.ApiKey);
        request.Headers.Add("anthropic-version", "2023-06-01");
        request.Headers.Add("anthropic-beta", "managed-agents-2026-04-01");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        using var stream = new StreamReader(await response.Content.ReadAsStreamAsync());
        var firstLine = await stream.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal("event: ping", firstLine);
    }

    [Fact]
    public async Task Initial_events_start_the_session_running_and_session_update_patches_metadata()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:demo");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        // the scripted model answers at once, so the create response already shows the first tool call's idle
        var start = await cp.App.Events.ListAsync(session.Id, limit: 2);
        Assert.Equal(["user.message", "session.status_running"], start.Data.Select(e => e.Type));
        Assert.Equal(agent.Id, session.Agent.Id);
        Assert.Equal(1, session.Agent.Version);

        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/sessions/{session.Id}", """{"title":"t","metadata":{"a":"1","b":"2"}}""");
        Assert.Equal(200, status);
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/sessions/{session.Id}", """{"metadata":{"a":null}}""");
        Assert.Equal("""{"b":"2"}""", body.GetProperty("metadata").GetRawText());
        Assert.Equal("t", body.GetProperty("title").GetString());
        Assert.Contains((await cp.App.Events.ListAllAsync(session.Id).ToListAsync()), e => e.Type == EventTypes.SessionUpdated);

        var updated = await cp.App.Agents.UpdateAsync(agent.Id, new CreateAgentRequest { Name = "renamed", Model = TestControlPlane.Json("\"scripted:hello\""), Version = 1 });
        Assert.Equal(2, updated.Version);
        Assert.Equal("scripted:demo", (await cp.App.Agents.GetAsync(agent.Id, version: 1)).ModelId);
        var stale = await Assert.ThrowsAsync<ManagedAgentsException>(() =>
            cp.App.Agents.UpdateAsync(agent.Id, new CreateAgentRequest { Name = "x", Model = TestControlPlane.Json("\"m\""), Version = 1 }));
        Assert.Equal(409, stale.Status);
    }
}
