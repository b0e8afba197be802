using System.Diagnostics;
using Hands.Orchestrator;
using Hands.Testing;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// One session's trace across processes: the orchestrator's handling of the work item, the engine's server and
/// sandbox spans (this process, the in-memory exporter), the worker in the sandbox (its own process, exporting over
/// OTLP/HTTP to a receiver on loopback that the sandbox reaches as host.hands.internal), its tool calls, and the
/// control plane's server span of each result post, which continues the worker's span across the process boundary.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SessionTraceTests(EngineFixture engine)
{
    [Fact]
    public async Task One_trace_runs_from_the_work_item_through_the_engine_and_the_worker_to_each_tool_call_and_result_post()
    {
        await using var collector = await OtlpReceiver.StartAsync(engine.OtlpPort);
        using var trace = new TraceCapture();
        await using var cp = await LocalControlPlane.StartAsync(engine);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o => o.WorkerOtlpPort = engine.OtlpPort));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
            await orchestrator.WhenIdleAsync();
            // The worker exports in batches and flushes when it exits (it idles out after WorkerMaxIdle).
            await Eventually.TrueAsync(() => collector.Spans.Count(s => s.Name == "anthropic.sessions.events.send") >= 2
                && collector.Spans.Any(s => s.Name == "anthropic.environment.work"), "the worker's spans to reach the collector", TimeSpan.FromSeconds(90));
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(name);
        }

        var traceId = trace.Root.TraceId.ToHexString();
        // The orchestrator: one span for the item, under whatever was current when it was claimed (here the test's root).
        var spawn = Assert.Single(trace.Named("hands.orchestrator.spawn"));
        Assert.Equal(trace.Root.SpanId, spawn.ParentSpanId);
        Assert.Equal(ActivityStatusCode.Ok, spawn.Status);
        Assert.Equal(cp.EnvironmentId, spawn.GetTagItem("anthropic.environment.id"));
        Assert.Equal(session, spawn.GetTagItem("anthropic.session.id"));
        Assert.Equal(name, spawn.GetTagItem("hands.sandbox.name"));
        Assert.Equal("created", spawn.GetTagItem("hands.sandbox.acquisition"));
        Assert.Equal("handed_off", spawn.GetTagItem("hands.lease.hand_off"));
        var workId = (string)spawn.GetTagItem("anthropic.environment.work.id")!;
        var steps = trace.Spans.Where(s => s.ParentSpanId == spawn.SpanId).Select(s => s.DisplayName).ToList();
        Assert.Contains("anthropic.environments.work.heartbeat", steps); // the claim
        Assert.Contains("hands.orchestrator.sandbox.acquire", steps);
        Assert.Contains("hands.orchestrator.worker.start", steps);
        Assert.Contains("hands.orchestrator.lease.hand_off", steps);

        // The engine: the client's call, the engine's server span continuing it (traceparent), the create under that.
        var acquire = trace.Named("hands.orchestrator.sandbox.acquire").Single();
        var createCall = trace.Spans.Single(s => s.DisplayName == "POST /v1/namespaces/{namespace}/sandboxes" && s.Kind == ActivityKind.Client && s.ParentSpanId == acquire.SpanId);
        var createServer = trace.Spans.Single(s => s.Kind == ActivityKind.Server && s.ParentSpanId == createCall.SpanId);
        Assert.Equal("POST /v1/namespaces/{ns}/sandboxes", createServer.DisplayName);
        Assert.Equal(200, createServer.GetTagItem("http.response.status_code"));
        var create = trace.Spans.Single(s => s.DisplayName == "hands.sandbox.create" && s.ParentSpanId == createServer.SpanId);
        Assert.Equal(name, create.GetTagItem("hands.sandbox.name"));
        Assert.Equal(ActivityStatusCode.Ok, create.Status);
        var workerStart = trace.Named("hands.orchestrator.worker.start").Single();
        var startProcess = trace.Spans.Single(s => s.DisplayName == "POST /api/v1/processes" && s.ParentSpanId == workerStart.SpanId);
        Assert.Equal(ActivityStatusCode.Unset, startProcess.Status);

        // The worker, in its own process: its work span is the orchestrator's spawn span's child (TRACEPARENT).
        var worker = collector.Spans.Where(s => s.TraceId == traceId).ToList();
        var work = Assert.Single(worker, s => s.Name == "anthropic.environment.work");
        Assert.Equal("hands-worker", work.ServiceName);
        Assert.Equal("Hands", work.Scope);
        Assert.Equal(spawn.SpanId.ToHexString(), work.ParentSpanId);
        Assert.Equal(workId, work.Tag("anthropic.environment.work.id"));
        Assert.Equal(session, work.Tag("anthropic.session.id"));
        Assert.Equal(cp.EnvironmentId, work.Tag("anthropic.environment.id"));
        var tools = worker.Where(s => s.Name.StartsWith("anthropic.tool_use ", StringComparison.Ordinal)).ToList();
        Assert.Equal(["anthropic.tool_use read", "anthropic.tool_use write"], tools.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.All(tools, t =>
        {
            Assert.Equal(work.SpanId, t.ParentSpanId);
            Assert.Equal("execute_tool", t.Tag("gen_ai.operation.name"));
            Assert.Equal(session, t.Tag("anthropic.session.id"));
            Assert.NotNull(t.Tag("gen_ai.tool.call.id"));
            Assert.Null(t.Tag("gen_ai.tool.call.arguments")); // content is opt-in
        });

        // Each result post: the worker's CLIENT span, and the control plane's SERVER span (this process) continuing it.
        var posts = worker.Where(s => s.Name == "anthropic.sessions.events.send").ToList();
        Assert.Equal(2, posts.Count);
        foreach (var post in posts)
        {
            Assert.Equal(work.SpanId, post.ParentSpanId);
            var received = trace.Spans.Single(s => s.Kind == ActivityKind.Server && s.ParentSpanId.ToHexString() == post.SpanId);
            Assert.Equal("POST /v1/sessions/{id}/events", received.DisplayName);
        }

        // Nothing secret anywhere in what was exported, from either process.
        var exported = trace.Dump() + collector.RawText();
        foreach (var secret in new[] { LocalControlPlane.ApiKey, cp.EnvironmentKey, EngineFixture.ApiKey, "sk-ant-", "whsec_" })
        {
            Assert.DoesNotContain(secret, exported, StringComparison.Ordinal);
        }

        Assert.DoesNotContain("hi from the sandbox", exported, StringComparison.Ordinal); // the write's content
    }
}
