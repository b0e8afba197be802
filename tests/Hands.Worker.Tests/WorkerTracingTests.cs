using System.Diagnostics;
using System.Text.Json;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;
using Hands.Worker.Hosting;
using Hands.Worker.Runner;
using Hands.Worker.Telemetry;
using Hands.Worker.Tools;
using Microsoft.AspNetCore.Http;

namespace Hands.Worker.Tests;

/// <summary>
/// The worker's span tree for one session on the real local control plane, captured with the OpenTelemetry SDK's
/// in-memory exporter, against the official TypeScript worker's (1.14.0, <c>lib/internal/tracing/</c>): one
/// <c>anthropic.environment.work</c> per item with the poll and ack as its siblings; under it the heartbeats, the
/// session fetch, the event stream and history, one tool span per executed call (the result post its sibling) and the
/// final stop. The worker runs in process (the exporter is in this process); the scripted agent calls four tools.
/// </summary>
public sealed class WorkerTracingTests
{
    private const string Scenario = """
        {"turns":[{"steps":[
          {"tool":"write","input":{"file_path":"hello.txt","content":"hi from the sandbox"}},
          {"tool":"read","input":{"file_path":"hello.txt"}},
          {"tool":"read","input":{"file_path":"missing.txt"}},
          {"tool":"get_weather","custom":true,"input":{"city":"Lisbon"}},
          {"message":"done: {{results[3].text}}"}
        ]}]}
        """;

    private const string AgentTools = """
        [{"type":"agent_toolset_20260401"},
         {"type":"custom","name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]
        """;

    private static readonly string[] Children =
    [
        "anthropic.environments.work.heartbeat", "anthropic.sessions.retrieve", "anthropic.sessions.events.stream",
        "anthropic.sessions.events.list", "anthropic.sessions.events.send", "anthropic.environments.work.stop",
    ];

    /// <summary>A custom tool served in process: the test's stand-in for a manifest command.</summary>
    private sealed class WeatherTool : IWorkerTool
    {
        public string Name => "get_weather";
        public bool IsBuiltIn => false;
        public string Description => "Current weather for a city";

        public Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken) =>
            Task.FromResult(ToolOutput.Text("sunny in " + input.GetProperty("city").GetString()));
    }

    private sealed class Stage : IAsyncDisposable
    {
        private readonly DirectoryInfo _scenarios;
        private readonly DirectoryInfo _state;

        private Stage(TestControlPlane cp, AgentEnvironment env, string key, DirectoryInfo scenarios, DirectoryInfo workdir, DirectoryInfo state)
        {
            Cp = cp;
            Env = env;
            Key = key;
            _scenarios = scenarios;
            Workdir = workdir;
            _state = state;
        }

        public TestControlPlane Cp { get; }
        public AgentEnvironment Env { get; }
        public string Key { get; }
        public DirectoryInfo Workdir { get; }

        public static async Task<Stage> StartAsync()
        {
            var scenarios = Directory.CreateTempSubdirectory("hands-scenarios-");
            await File.WriteAllTextAsync(Path.Combine(scenarios.FullName, "traced.json"), Scenario);
            var cp = await TestControlPlane.StartAsync(o => o.ScenariosDirectory = scenarios.FullName);
            var (env, key) = await cp.CreateEnvironmentAsync();
            return new Stage(cp, env, key, scenarios, Directory.CreateTempSubdirectory("hands-worker-traced-"), Directory.CreateTempSubdirectory("hands-worker-state-"));
        }

        public async Task<Session> SessionAsync()
        {
            var agent = await Cp.CreateAgentAsync("scripted:traced", AgentTools);
            return await Cp.CreateSessionAsync(Env.Id, agent.Id, "go");
        }

        public EnvironmentWorker Worker(ManagedAgentsTracingOptions tracing, string? environmentKey = null) => new(new EnvironmentWorkerOptions
        {
            BaseUrl = Cp.BaseAddress,
            EnvironmentId = Env.Id,
            EnvironmentKey = environmentKey,
            Workdir = Workdir.FullName,
            StateDirectory = _state.FullName,
            MaxIdle = TimeSpan.FromMilliseconds(200),
            Log = WorkerLog.Silent,
            ExtraTools = _ => [new WeatherTool()],
            Tracing = tracing,
        });

        public async Task<List<SessionEvent>> HistoryAsync(string sessionId) => await Cp.App.Events.ListAllAsync(sessionId).ToListAsync();

        public async ValueTask DisposeAsync()
        {
            await Cp.DisposeAsync();
            _scenarios.Delete(recursive: true);
            Workdir.Delete(recursive: true);
            _state.Delete(recursive: true);
        }
    }

    private static void AssertTags(Dictionary<string, object?> expected, Activity span) =>
        Assert.Equal(expected.OrderBy(t => t.Key, StringComparer.Ordinal), span.TagObjects.OrderBy(t => t.Key, StringComparer.Ordinal));

    [Fact]
    public async Task Polling_one_session_gives_the_official_span_tree_with_no_content_by_default()
    {
        using var trace = new TraceCapture();
        await using var s = await Stage.StartAsync();
        var session = await s.SessionAsync();
        var worker = s.Worker(new ManagedAgentsTracingOptions(), s.Key);
        using var stop = new CancellationTokenSource();
        var polling = worker.RunAsync(stop.Token);
        await Eventually.TrueAsync(() => trace.Named("anthropic.environment.work").Count == 1, "the work item's span to end", TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        try
        {
            await polling;
        }
        catch (OperationCanceledException)
        {
            // the poller stops by cancellation
        }

        // The work span: a child of the caller's context (here the test's root), with the SDK's four attributes.
        var work = Assert.Single(trace.Named("anthropic.environment.work"));
        var ack = Assert.Single(trace.Named("anthropic.environments.work.ack"));
        var workId = (string)ack.GetTagItem("anthropic.environment.work.id")!;
        Assert.Equal(ActivityKind.Internal, work.Kind);
        Assert.Equal(ActivityStatusCode.Ok, work.Status);
        Assert.Equal(trace.Root.SpanId, work.ParentSpanId);
        AssertTags(new Dictionary<string, object?>
        {
            ["gen_ai.provider.name"] = "anthropic",
            ["anthropic.environment.id"] = s.Env.Id,
            ["anthropic.environment.work.id"] = workId,
            ["anthropic.session.id"] = session.Id,
        }, work);

        // Poll and ack are its siblings, and it starts before the ack (after the poll that claimed the item).
        Assert.Equal(trace.Root.SpanId, ack.ParentSpanId);
        Assert.All(trace.Named("anthropic.environments.work.poll"), p => Assert.Equal(trace.Root.SpanId, p.ParentSpanId));
        Assert.True(work.StartTimeUtc <= ack.StartTimeUtc);
        Assert.Equal(ActivityStatusCode.Ok, ack.Status);

        // Everything the item did is its child.
        foreach (var name in Children)
        {
            var spans = trace.Named(name);
            Assert.True(spans.Count > 0, $"no {name} span");
            Assert.All(spans, c => Assert.Equal(work.SpanId, c.ParentSpanId));
            Assert.All(spans, c => Assert.Equal(ActivityKind.Client, c.Kind));
        }

        Assert.Single(trace.Named("anthropic.sessions.retrieve"));
        Assert.Equal(ActivityStatusCode.Ok, Assert.Single(trace.Named("anthropic.environments.work.stop")).Status);
        var firstBeat = trace.Named("anthropic.environments.work.heartbeat").MinBy(h => h.StartTimeUtc)!;
        Assert.Equal("expected_last_heartbeat=NO_HEARTBEAT", firstBeat.GetTagItem("url.query"));

        // One tool span per executed call, children of the work span, named and attributed as the SDK's.
        var uses = (await s.HistoryAsync(session.Id)).Where(e => e.Type is EventTypes.AgentToolUse or EventTypes.AgentCustomToolUse).ToList();
        Assert.Equal(4, uses.Count);
        var tools = trace.Spans.Where(t => t.DisplayName.StartsWith("anthropic.tool_use ", StringComparison.Ordinal)
            || t.DisplayName.StartsWith("anthropic.custom_tool_use ", StringComparison.Ordinal)).OrderBy(t => t.StartTimeUtc).ToList();
        Assert.Equal(["anthropic.tool_use write", "anthropic.tool_use read", "anthropic.tool_use read", "anthropic.custom_tool_use get_weather"],
            tools.Select(t => t.DisplayName));
        var descriptions = new Dictionary<string, string>
        {
            ["write"] = "Write a UTF-8 text file relative to the workdir, creating parent directories as needed.",
            ["read"] = "Read a UTF-8 text file relative to the workdir.",
            ["get_weather"] = "Current weather for a city",
        };
        for (var i = 0; i < 4; i++)
        {
            var tool = tools[i];
            Assert.Equal(ActivityKind.Internal, tool.Kind);
            Assert.Equal(work.SpanId, tool.ParentSpanId);
            var expected = new Dictionary<string, object?>
            {
                ["gen_ai.operation.name"] = "execute_tool",
                ["gen_ai.provider.name"] = "anthropic",
                ["gen_ai.tool.name"] = uses[i].Name,
                ["gen_ai.tool.description"] = descriptions[uses[i].Name!],
                ["gen_ai.tool.call.id"] = uses[i].Id,
                ["gen_ai.tool.type"] = "function",
                ["anthropic.session.id"] = session.Id,
            };
            if (i == 2)
            {
                expected["error.type"] = "tool_error"; // reading a missing file: an is_error result
            }

            AssertTags(expected, tool);
            Assert.Equal(i == 2 ? ActivityStatusCode.Error : ActivityStatusCode.Ok, tool.Status);

            // The result's post is the tool span's sibling, after it.
            var post = trace.Named("anthropic.sessions.events.send").Single(p => p.StartTimeUtc >= tool.StartTimeUtc + tool.Duration
                && (i == 3 || p.StartTimeUtc < tools[i + 1].StartTimeUtc));
            Assert.Equal(work.SpanId, post.ParentSpanId);
            Assert.Equal(ActivityStatusCode.Ok, post.Status);
        }

        // No content without the opt-in, and no credential anywhere.
        var dump = trace.Dump();
        Assert.DoesNotContain("gen_ai.tool.call.arguments", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("anthropic.tool_result.content", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("anthropic.content.truncated", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("hi from the sandbox", dump, StringComparison.Ordinal);
        Assert.DoesNotContain("Lisbon", dump, StringComparison.Ordinal);
        Assert.DoesNotContain(s.Key, dump, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-ant", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_joins_the_trace_in_traceparent_and_records_content_only_with_the_opt_in()
    {
        using var trace = new TraceCapture();
        await using var s = await Stage.StartAsync();
        var session = await s.SessionAsync();
        // Claimed as an orchestrator does; the worker gets only the work secret, and the parent through TRACEPARENT.
        var claimer = s.Cp.Worker(s.Key);
        var item = await claimer.Work.PollAsync(s.Env.Id, 500) ?? throw new InvalidOperationException("nothing queued");
        await claimer.Work.AckAsync(s.Env.Id, item.Id);
        var worker = s.Worker(new ManagedAgentsTracingOptions { RecordContent = true });
        worker.Options.ParentContext = WorkSpan.ParentFromEnvironment(name => name == "TRACEPARENT" ? trace.Root.Id : null);

        var caller = Activity.Current;
        Activity.Current = null; // a fresh process: nothing current but what TRACEPARENT says
        var serving = worker.HandleItemAsync(item.Id, item.Data.Id, item.Secret, CancellationToken.None);
        Activity.Current = caller;
        var outcome = await serving;
        Assert.False(outcome.Failed);

        var work = Assert.Single(trace.Named("anthropic.environment.work"));
        Assert.Equal(trace.Root.SpanId, work.ParentSpanId);
        Assert.True(work.HasRemoteParent);
        Assert.Equal(ActivityStatusCode.Ok, work.Status);
        Assert.Equal(item.Id, work.GetTagItem("anthropic.environment.work.id"));
        Assert.All(trace.Named("anthropic.environments.work.heartbeat"), h => Assert.Equal(work.SpanId, h.ParentSpanId));

        var history = await s.HistoryAsync(session.Id);
        var uses = history.Where(e => e.Type is EventTypes.AgentToolUse or EventTypes.AgentCustomToolUse).ToList();
        var results = history.Where(e => e.Type is EventTypes.UserToolResult or EventTypes.UserCustomToolResult)
            .ToDictionary(e => e.ToolUseId ?? e.CustomToolUseId!);
        foreach (var use in uses)
        {
            var span = trace.Spans.Single(t => (string?)t.GetTagItem("gen_ai.tool.call.id") == use.Id);
            Assert.Equal(work.SpanId, span.ParentSpanId);
            using var arguments = JsonDocument.Parse((string)span.GetTagItem("gen_ai.tool.call.arguments")!);
            Assert.True(JsonElement.DeepEquals(use.Input!.Value, arguments.RootElement));
            using var content = JsonDocument.Parse((string)span.GetTagItem("anthropic.tool_result.content")!);
            var block = Assert.Single(content.RootElement.EnumerateArray());
            Assert.Equal("text", block.GetProperty("type").GetString());
            Assert.Equal(results[use.Id!].Text, block.GetProperty("text").GetString());
            Assert.Null(span.GetTagItem("anthropic.content.truncated"));
        }

        var dump = trace.Dump();
        Assert.Contains("sunny in Lisbon", dump, StringComparison.Ordinal);
        Assert.DoesNotContain(item.Secret!, dump, StringComparison.Ordinal);
        Assert.DoesNotContain(s.Key, dump, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-ant", dump, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_worker_process_exports_its_spans_over_otlp_to_the_otel_endpoint_and_flushes_them_before_it_exits()
    {
        await using var collector = await LoopbackStub.StartAsync(c =>
        {
            c.Response.StatusCode = 200;
            return Task.CompletedTask;
        });
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:demo");
        await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        var claimer = s.Cp.Worker(s.Key);
        var item = await claimer.Work.PollAsync(s.Env.Id, 500) ?? throw new InvalidOperationException("nothing queued");
        await claimer.Work.AckAsync(s.Env.Id, item.Id);
        await using var worker = WorkerProcess.Start(new()
        {
            ["ANTHROPIC_BASE_URL"] = s.Cp.BaseAddress.ToString().TrimEnd('/'),
            ["ANTHROPIC_ENVIRONMENT_ID"] = s.Env.Id,
            ["ANTHROPIC_SESSION_ID"] = item.Data.Id,
            ["ANTHROPIC_WORK_ID"] = item.Id,
            ["ANTHROPIC_WORK_SECRET"] = item.Secret!,
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = collector.BaseAddress.ToString().TrimEnd('/'),
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_EXPORTER_OTLP_HEADERS"] = "x-collector-key=collector-secret",
            ["TRACEPARENT"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        }, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));

        // Sent by the time the process is gone: the batch the exit flushed.
        var exports = collector.Requests.Where(r => r.Method == "POST" && r.PathAndQuery == "/v1/traces").ToList();
        Assert.NotEmpty(exports);
        Assert.All(exports, r => Assert.Equal("collector-secret", r.Headers["x-collector-key"]));
        var body = string.Concat(exports.Select(r => r.Body));
        foreach (var expected in new[] { "anthropic.environment.work", "anthropic.tool_use write", "anthropic.tool_use read",
                     "anthropic.environments.work.heartbeat", "anthropic.sessions.events.send", "hands-worker", "Hands" })
        {
            Assert.Contains(expected, body, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(item.Secret!, body, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-ant", body, StringComparison.Ordinal);
        Assert.DoesNotContain("hi from the sandbox", body, StringComparison.Ordinal); // the write's content: metadata only by default

        // The tool-call duration histogram, by tool and outcome, exported once more at exit (the reader's interval is 60 s).
        var metricExports = collector.Requests.Where(r => r.Method == "POST" && r.PathAndQuery == "/v1/metrics").ToList();
        Assert.NotEmpty(metricExports);
        var metrics = string.Concat(metricExports.Select(r => r.Body));
        foreach (var expected in new[] { "hands.worker.tool.duration", "gen_ai.tool.name", "write", "read", "hands.outcome", "ok", "hands-worker" })
        {
            Assert.Contains(expected, metrics, StringComparison.Ordinal);
        }

        Assert.DoesNotContain(item.Secret!, metrics, StringComparison.Ordinal);
        Assert.DoesNotContain("hi from the sandbox", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_calls_conversation_id_is_its_threads_else_the_primary_threads_and_its_result_post_carries_it()
    {
        using var trace = new TraceCapture();
        var workdir = Directory.CreateTempSubdirectory("hands-worker-threads-");
        await File.WriteAllTextAsync(Path.Combine(workdir.FullName, "f.txt"), "x");
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            if (c.Request.Path.Value!.EndsWith("/events/stream", StringComparison.Ordinal))
            {
                c.Response.ContentType = "text/event-stream";
                await c.Response.WriteAsync("""
                    event: message
                    data: {"type":"session.thread_status_running","id":"sevt_0","session_thread_id":"sthr_primary"}

                    event: message
                    data: {"type":"agent.tool_use","id":"sevt_1","name":"read","input":{"file_path":"f.txt"}}

                    event: message
                    data: {"type":"agent.tool_use","id":"sevt_2","name":"read","input":{"file_path":"f.txt"},"session_thread_id":"sthr_child"}


                    """.ReplaceLineEndings("\n"));
                await c.Response.Body.FlushAsync();
                try
                {
                    await Task.Delay(Timeout.Infinite, c.RequestAborted); // open until the runner goes
                }
                catch (OperationCanceledException)
                {
                }

                return;
            }

            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync(c.Request.Method == "GET" ? """{"data":[],"next_page":null}""" : """{"data":[]}""");
        });
        using var client = new ManagedAgentsClient(ManagedAgentsCredential.Bearer("sk-ant-test"), new ManagedAgentsClientOptions
        {
            BaseUrl = stub.BaseAddress,
            Tracing = new ManagedAgentsTracingOptions(),
        });
        var runner = new SessionToolRunner(client, "sesn_1", [new ReadTool(new ToolContext(workdir.FullName))], TimeSpan.Zero, WorkerLog.Silent);
        using var stop = new CancellationTokenSource();
        var running = runner.RunAsync(stop.Token);
        await Eventually.TrueAsync(() => trace.Named("anthropic.sessions.events.send").Count == 2, "both results to be posted");
        await stop.CancelAsync();
        await running;
        workdir.Delete(recursive: true);

        var primary = trace.Spans.Single(t => (string?)t.GetTagItem("gen_ai.tool.call.id") == "sevt_1");
        Assert.Equal("sthr_primary", primary.GetTagItem("gen_ai.conversation.id"));
        Assert.Null(primary.GetTagItem("anthropic.session.thread.id")); // a primary-thread call has no thread id of its own
        var child = trace.Spans.Single(t => (string?)t.GetTagItem("gen_ai.tool.call.id") == "sevt_2");
        Assert.Equal("sthr_child", child.GetTagItem("gen_ai.conversation.id"));
        Assert.Equal("sthr_child", child.GetTagItem("anthropic.session.thread.id"));
        var posts = trace.Named("anthropic.sessions.events.send").OrderBy(p => p.StartTimeUtc).ToList();
        Assert.Equal(["sthr_primary", "sthr_child"], posts.Select(p => (string?)p.GetTagItem("gen_ai.conversation.id")));
        Assert.All(trace.Spans.Where(t => t.DisplayName.StartsWith("anthropic.tool_use", StringComparison.Ordinal)), t => Assert.Equal(trace.Root.SpanId, t.ParentSpanId));
    }

    [Fact]
    public void Content_keeps_to_its_budget_losing_result_blocks_from_the_end_and_arguments_whole()
    {
        using var trace = new TraceCapture();
        var input = JsonDocument.Parse("""{"command":"echo é"}""").RootElement;
        var blocks = new List<ContentBlock>
        {
            ContentBlock.FromText("first"),
            new() { Type = "image", Extra = new() { ["source"] = JsonDocument.Parse("""{"data":"AAAA"}""").RootElement } },
            ContentBlock.FromText("third"),
        };

        using (var whole = new Activity("whole").Start())
        {
            ToolSpan.SetContent(whole, input, blocks, 750_000);
            Assert.Equal("""{"command":"echo é"}""", whole.GetTagItem("gen_ai.tool.call.arguments"));
            Assert.Equal("""[{"type":"text","text":"first"},{"type":"image"},{"type":"text","text":"third"}]""", whole.GetTagItem("anthropic.tool_result.content"));
            Assert.Null(whole.GetTagItem("anthropic.content.truncated"));
        }

        // 21 bytes of arguments ("é" is two), then 2 + 30 + 1 + 16 = 49 for two blocks: 70 fits, the third does not.
        using (var cut = new Activity("cut").Start())
        {
            ToolSpan.SetContent(cut, input, blocks, 70);
            Assert.Equal("""{"command":"echo é"}""", cut.GetTagItem("gen_ai.tool.call.arguments"));
            Assert.Equal("""[{"type":"text","text":"first"},{"type":"image"}]""", cut.GetTagItem("anthropic.tool_result.content"));
            Assert.Equal(true, cut.GetTagItem("anthropic.content.truncated"));
        }

        using (var tiny = new Activity("tiny").Start())
        {
            ToolSpan.SetContent(tiny, input, blocks, 20);
            Assert.Null(tiny.GetTagItem("gen_ai.tool.call.arguments")); // over the budget alone: left out whole
            Assert.Equal("[]", tiny.GetTagItem("anthropic.tool_result.content"));
            Assert.Equal(true, tiny.GetTagItem("anthropic.content.truncated"));
        }
    }

    [Fact]
    public void A_tool_span_cut_short_by_the_runners_stop_has_no_status_and_a_child_threads_call_names_its_thread()
    {
        using var trace = new TraceCapture();
        var call = new SessionEvent { Type = EventTypes.AgentToolUse, Id = "sevt_1", Name = "bash", SessionThreadId = "sthr_child", Input = JsonDocument.Parse("{}").RootElement };
        var tracing = new ManagedAgentsTracingOptions { RecordContent = true };
        var span = ToolSpan.Start(tracing, call, new WeatherTool(), "sesn_1", "sthr_child", default)!;
        var aborted = ToolOutput.Text("bash: This operation was aborted", isError: true);
        span.End(call.Input, aborted, aborted.Content, runnerStopped: true);

        var ended = Assert.Single(trace.Spans);
        Assert.Equal(ActivityStatusCode.Unset, ended.Status);
        Assert.Null(ended.GetTagItem("error.type"));
        Assert.Null(ended.GetTagItem("anthropic.tool_result.content")); // a cancelled run records no result
        Assert.Equal("sthr_child", ended.GetTagItem("anthropic.session.thread.id"));
        Assert.Equal("sthr_child", ended.GetTagItem("gen_ai.conversation.id"));
    }

    [Theory]
    [InlineData(null, null, null, null, false)]
    [InlineData("http://127.0.0.1:4318", null, null, null, true)]
    [InlineData(null, "http://127.0.0.1:4318/v1/traces", null, null, true)]
    [InlineData("http://127.0.0.1:4318", null, "none", null, false)]
    [InlineData(null, null, "otlp", null, true)]
    [InlineData(null, null, "console", null, false)]
    [InlineData("http://127.0.0.1:4318", null, null, "true", false)]
    public void The_export_starts_only_when_otel_variables_ask_for_traces(string? endpoint, string? tracesEndpoint, string? exporter, string? disabled, bool wanted)
    {
        var env = new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,
            ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = tracesEndpoint,
            ["OTEL_TRACES_EXPORTER"] = exporter,
            ["OTEL_SDK_DISABLED"] = disabled,
        };
        Assert.Equal(wanted, TraceExport.Wanted(name => env.GetValueOrDefault(name)));
    }

    [Fact]
    public void Traceparent_from_the_environment_is_the_parent_and_a_malformed_one_is_ignored()
    {
        var parent = WorkSpan.ParentFromEnvironment(name => name switch
        {
            "TRACEPARENT" => "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "TRACESTATE" => "vendor=1",
            _ => null,
        });
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", parent.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", parent.SpanId.ToHexString());
        Assert.Equal("vendor=1", parent.TraceState);
        Assert.True(parent.IsRemote);
        Assert.Equal(default, WorkSpan.ParentFromEnvironment(name => name == "TRACEPARENT" ? "not-a-traceparent" : null));
        Assert.Equal(default, WorkSpan.ParentFromEnvironment(_ => null));
    }
}
