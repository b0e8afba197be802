using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Protocol.Tests;

/// <summary>
/// The client's call spans against a loopback stub, captured with the OpenTelemetry SDK's in-memory exporter, checked
/// against the official TypeScript SDK's tracing (1.14.0, <c>internal/tracing.ts</c>): one CLIENT span per call across
/// its retries, its attributes, its status, and the trace context sent with every attempt.
/// </summary>
public sealed class ClientTracingTests
{
    private const string Bearer = "sk-ant-oat01-secret-environment-key-0123456789";
    private const string WorkSecret = "eyJzZXNzaW9uc190b2tlbiI6InNrLWFudC1zZXNzaW9uLXNlY3JldCJ9";

    private static ManagedAgentsClient Client(LoopbackStub stub, int retries = 0, ManagedAgentsTracingOptions? tracing = null) =>
        new(ManagedAgentsCredential.Bearer(Bearer), new ManagedAgentsClientOptions
        {
            BaseUrl = stub.BaseAddress,
            MaxRetries = retries,
            InitialRetryDelay = TimeSpan.Zero, // retries at once: the test waits for nothing
            Tracing = tracing ?? new ManagedAgentsTracingOptions(),
        });

    private static Task<LoopbackStub> JsonStub(string json, int status = 200, string? requestId = "req_011CTrace") =>
        LoopbackStub.StartAsync(async c =>
        {
            c.Response.StatusCode = status;
            if (requestId is not null)
            {
                c.Response.Headers["request-id"] = requestId;
            }

            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync(json);
        });

    private const string HeartbeatJson = """{"type":"work_heartbeat","lease_extended":true,"state":"running","ttl_seconds":60,"last_heartbeat":"2026-01-01T00:00:00Z"}""";

    [Fact]
    public async Task A_call_is_one_client_span_named_as_the_sdk_names_it_with_the_sdks_attributes()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub(HeartbeatJson);
        using var client = Client(stub);
        await client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat, desiredTtlSeconds: 60);

        var span = Assert.Single(trace.Spans);
        Assert.Equal("anthropic.environments.work.heartbeat", span.DisplayName);
        Assert.Equal(ActivityKind.Client, span.Kind);
        Assert.Equal(ActivityStatusCode.Ok, span.Status);
        Assert.Equal(trace.Root.SpanId, span.ParentSpanId);
        Assert.Equal("Hands", span.Source.Name);
        var port = stub.BaseAddress.Port;
        var expected = new Dictionary<string, object?>
        {
            ["gen_ai.provider.name"] = "anthropic",
            ["server.address"] = "127.0.0.1",
            ["server.port"] = port,
            ["http.route"] = "/v1/environments/{environment_id}/work/{work_id}/heartbeat",
            ["anthropic.environment.id"] = "env_1",
            ["anthropic.environment.work.id"] = "work_1",
            ["http.request.method"] = "POST",
            ["url.scheme"] = "http",
            ["url.path"] = "/v1/environments/env_1/work/work_1/heartbeat",
            ["url.query"] = "expected_last_heartbeat=NO_HEARTBEAT&desired_ttl_seconds=60",
            ["url.full"] = $"http://127.0.0.1:{port}/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=NO_HEARTBEAT&desired_ttl_seconds=60",
            ["http.response.status_code"] = 200,
            ["anthropic.request.id"] = "req_011CTrace",
        };
        Assert.Equal(expected.OrderBy(p => p.Key), span.TagObjects.OrderBy(p => p.Key));
    }

    [Fact]
    public async Task Url_query_holds_only_the_parameters_the_endpoint_defines_as_sent()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub("""{"data":[],"next_page":null}""");
        using var client = Client(stub);
        await client.Events.ListAsync("sesn_1", limit: 10, order: "asc", types: ["agent.tool_use"]);
        await client.Sessions.ListAsync(limit: 5, agentId: "agent_1", statuses: ["idle"]);

        var list = Assert.Single(trace.Named("anthropic.sessions.events.list"));
        Assert.Equal("limit=10&order=asc&types%5B%5D=agent.tool_use", list.GetTagItem("url.query"));
        Assert.Equal("sesn_1", list.GetTagItem("anthropic.session.id"));
        Assert.Equal("/v1/sessions/{session_id}/events", list.GetTagItem("http.route"));
        var sessions = Assert.Single(trace.Named("anthropic.sessions.list"));
        Assert.Equal("limit=5&agent_id=agent_1&statuses%5B%5D=idle", sessions.GetTagItem("url.query"));
    }

    [Fact]
    public async Task Retries_are_one_span_with_the_resend_count_and_every_attempt_carries_its_traceparent()
    {
        using var trace = new TraceCapture();
        var calls = 0;
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            if (Interlocked.Increment(ref calls) <= 2)
            {
                c.Response.StatusCode = 503;
                return;
            }

            c.Response.Headers["request-id"] = "req_third";
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync(HeartbeatJson);
        });
        using var client = Client(stub, retries: 2);
        await client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat);

        var span = Assert.Single(trace.Spans);
        Assert.Equal(ActivityStatusCode.Ok, span.Status);
        Assert.Equal(2, span.GetTagItem("http.request.resend_count"));
        Assert.Equal(200, span.GetTagItem("http.response.status_code"));
        Assert.Equal("req_third", span.GetTagItem("anthropic.request.id"));
        Assert.Equal(3, stub.Requests.Count);
        Assert.All(stub.Requests, r => Assert.Equal($"00-{span.TraceId}-{span.SpanId}-01", r.Headers["traceparent"]));
    }

    [Fact]
    public async Task With_propagation_off_the_span_is_made_and_no_request_carries_trace_headers()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub(HeartbeatJson);
        using var client = Client(stub, tracing: new ManagedAgentsTracingOptions { Propagation = false });
        await client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat);

        Assert.Single(trace.Spans);
        var request = Assert.Single(stub.Requests);
        Assert.False(request.Headers.ContainsKey("traceparent"));
        Assert.False(request.Headers.ContainsKey("tracestate"));
    }

    [Fact]
    public async Task With_tracing_off_there_is_no_span_and_no_trace_header()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub(HeartbeatJson);
        using var client = Client(stub, tracing: ManagedAgentsTracingOptions.FromEnvironment(name => name == "ANTHROPIC_OPEN_TELEMETRY" ? "FALSE" : null));
        await client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat);

        Assert.Empty(trace.Spans);
        Assert.False(Assert.Single(stub.Requests).Headers.ContainsKey("traceparent"));
    }

    [Fact]
    public async Task The_parents_tracestate_travels_with_the_call()
    {
        using var trace = new TraceCapture();
        trace.Root.TraceStateString = "vendor=abc";
        await using var stub = await JsonStub(HeartbeatJson);
        using var client = Client(stub);
        await client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat);

        Assert.Equal("vendor=abc", Assert.Single(stub.Requests).Headers["tracestate"]);
    }

    [Fact]
    public async Task An_error_answer_is_error_with_the_envelopes_type_and_without_one_its_status()
    {
        using var trace = new TraceCapture();
        await using var notFound = await JsonStub("""{"type":"error","error":{"type":"not_found_error","message":"no such session"},"request_id":"req_nf"}""", 404, "req_nf");
        await using var broken = await LoopbackStub.StartAsync(c =>
        {
            c.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        using (var client = Client(notFound))
        {
            await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Sessions.GetAsync("sesn_missing"));
        }

        using (var client = Client(broken))
        {
            await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Sessions.GetAsync("sesn_1"));
        }

        var spans = trace.Named("anthropic.sessions.retrieve");
        Assert.Equal(2, spans.Count);
        Assert.All(spans, s => Assert.Equal(ActivityStatusCode.Error, s.Status));
        Assert.Equal("not_found_error", spans[0].GetTagItem("error.type"));
        Assert.Equal(404, spans[0].GetTagItem("http.response.status_code"));
        Assert.Equal("req_nf", spans[0].GetTagItem("anthropic.request.id"));
        Assert.Equal("500", spans[1].GetTagItem("error.type"));
        Assert.Equal(500, spans[1].GetTagItem("http.response.status_code"));
    }

    [Fact]
    public async Task A_refused_connection_is_connection_error_and_a_cancelled_call_has_no_status()
    {
        using var trace = new TraceCapture();
        var closed = new TcpListener(IPAddress.Loopback, 0);
        closed.Start();
        var port = ((IPEndPoint)closed.LocalEndpoint).Port;
        closed.Stop();
        using (var client = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(Bearer),
                   new ManagedAgentsClientOptions { BaseUrl = new Uri($"http://127.0.0.1:{port}"), MaxRetries = 0, Tracing = new() }))
        {
            await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Sessions.GetAsync("sesn_1"));
        }

        await using var stub = await JsonStub(HeartbeatJson);
        using (var client = Client(stub))
        {
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.Work.HeartbeatAsync("env_1", "work_1", "x", cancellationToken: cancelled.Token));
        }

        var refused = Assert.Single(trace.Named("anthropic.sessions.retrieve"));
        Assert.Equal(ActivityStatusCode.Error, refused.Status);
        Assert.Equal("connection_error", refused.GetTagItem("error.type"));
        Assert.Null(refused.GetTagItem("http.response.status_code"));
        var aborted = Assert.Single(trace.Named("anthropic.environments.work.heartbeat"));
        Assert.Equal(ActivityStatusCode.Unset, aborted.Status);
        Assert.Null(aborted.GetTagItem("error.type"));
    }

    [Fact]
    public async Task An_sse_stream_the_server_ends_leaves_the_status_unset_and_its_span_lasts_as_long_as_the_stream()
    {
        using var trace = new TraceCapture();
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.ContentType = "text/event-stream";
            await c.Response.WriteAsync("event: message\ndata: {\"type\":\"session.status_idle\",\"id\":\"sevt_1\"}\n\n");
            await c.Response.Body.FlushAsync();
            await release.Task;
        });
        using var client = Client(stub);
        await using var stream = await client.Events.OpenStreamAsync("sesn_1");
        await using var events = stream.ReadAllAsync().GetAsyncEnumerator();
        Assert.True(await events.MoveNextAsync());
        Assert.Empty(trace.Spans); // still open
        release.SetResult();
        Assert.False(await events.MoveNextAsync());

        var span = Assert.Single(trace.Spans);
        Assert.Equal("anthropic.sessions.events.stream", span.DisplayName);
        Assert.Equal(ActivityStatusCode.Unset, span.Status);
        Assert.Equal(200, span.GetTagItem("http.response.status_code"));
        Assert.Equal("/v1/sessions/{session_id}/events/stream", span.GetTagItem("http.route"));
        Assert.Null(span.GetTagItem("url.query")); // nothing the endpoint defines was sent
    }

    [Fact]
    public async Task A_result_post_carries_the_conversation_id_and_a_create_gets_the_new_objects_id()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub("""{"data":[]}""");
        using var client = Client(stub);
        await client.Events.SendAsync("sesn_1", [new SessionEvent { Type = EventTypes.UserMessage }], conversationId: "sthr_1");
        await using var created = await JsonStub("""{"type":"environment","id":"env_new","name":"x","config":{"type":"self_hosted"},"created_at":"2026-01-01T00:00:00Z"}""");
        using var app = Client(created);
        await app.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "x", Config = TestControlPlane.Json("""{"type":"self_hosted"}""") });

        var send = Assert.Single(trace.Named("anthropic.sessions.events.send"));
        Assert.Equal("sthr_1", send.GetTagItem("gen_ai.conversation.id"));
        Assert.Equal("sesn_1", send.GetTagItem("anthropic.session.id"));
        Assert.DoesNotContain("sthr_1", Assert.Single(stub.Requests).Body, StringComparison.Ordinal); // never sent
        var create = Assert.Single(trace.Named("anthropic.environments.create"));
        Assert.Equal("env_new", create.GetTagItem("anthropic.environment.id"));
    }

    [Fact]
    public async Task No_credential_or_work_secret_appears_anywhere_in_the_exported_spans()
    {
        using var trace = new TraceCapture();
        await using var stub = await JsonStub($$"""{"type":"work","id":"work_1","environment_id":"env_1","data":{"type":"session","id":"sesn_1"},"state":"queued","metadata":{},"secret":"{{WorkSecret}}","created_at":"2026-01-01T00:00:00Z"}""");
        using var client = Client(stub);
        var item = await client.Work.PollAsync("env_1", 999, workerId: "worker-1");
        await client.Work.AckAsync("env_1", item!.Id);
        using var sessionClient = client.WithCredential(ManagedAgentsCredential.Bearer("sk-ant-session-secret"));
        await sessionClient.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat);

        Assert.Equal(3, trace.Spans.Count);
        var dump = trace.Dump();
        Assert.DoesNotContain(Bearer, dump, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-ant-session-secret", dump, StringComparison.Ordinal);
        Assert.DoesNotContain(WorkSecret, dump, StringComparison.Ordinal);
        Assert.DoesNotContain("sk-ant", dump, StringComparison.Ordinal);
        Assert.All(stub.Requests, r => Assert.StartsWith("Bearer ", r.Headers["authorization"], StringComparison.Ordinal)); // it was sent, just never recorded
    }

    [Theory]
    [InlineData(null, null, null, null, true, true, false, 750_000L)]
    [InlineData("False", "FALSE", "Content", "1000", false, false, true, 1000L)]
    [InlineData("no", "0", "metadata_only", "1e3", true, true, false, 750_000L)]
    [InlineData("true", "true", "content", "0", true, true, true, 750_000L)]
    [InlineData(null, null, null, "-5", true, true, false, 750_000L)]
    public void The_environment_variables_follow_the_sdks_rules(string? enabled, string? propagation, string? mode, string? bytes,
        bool isEnabled, bool propagates, bool recordsContent, long maxBytes)
    {
        var env = new Dictionary<string, string?>
        {
            ["ANTHROPIC_OPEN_TELEMETRY"] = enabled,
            ["ANTHROPIC_OPEN_TELEMETRY_PROPAGATION"] = propagation,
            ["ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"] = mode,
            ["ANTHROPIC_OPEN_TELEMETRY_TRACES_MAX_CONTENT_BYTES"] = bytes,
        };
        var options = ManagedAgentsTracingOptions.FromEnvironment(name => env.GetValueOrDefault(name));
        Assert.Equal(isEnabled, options.Enabled);
        Assert.Equal(propagates, options.Propagation);
        Assert.Equal(recordsContent, options.RecordContent);
        Assert.Equal(maxBytes, options.MaxContentBytes);
    }
}
