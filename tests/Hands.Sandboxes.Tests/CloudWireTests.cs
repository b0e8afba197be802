using System.Text.Json;
using Hands.Testing;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.Sandboxes.Tests;

/// <summary>
/// The Tensorlake client against recorded responses in the documented wire shapes (reference/tensorlake-api.md),
/// served by a loopback stub standing in for Tensorlake's cloud.
/// </summary>
public sealed class CloudWireTests
{
    /// <summary>Routes by "METHOD path" to a status and body; records every request.</summary>
    private static Task<LoopbackStub> StubAsync(Func<string, HttpContext, (int Status, string Body, string? ContentType)> answer) =>
        LoopbackStub.StartAsync(async c =>
        {
            var (status, body, type) = answer($"{c.Request.Method} {c.Request.Path}{c.Request.QueryString}", c);
            c.Response.StatusCode = status;
            if (type is not null)
            {
                c.Response.ContentType = type;
            }

            await c.Response.WriteAsync(body);
        });

    private static TensorlakeClient Client(LoopbackStub stub, Action<TensorlakeClientOptions>? configure = null)
    {
        var options = new TensorlakeClientOptions
        {
            ApiUrl = new Uri("https://api.tensorlake.ai"),
            LifecycleUrl = stub.BaseAddress,
            ApiKey = "tl_apiKey_test",
            RetryBaseDelay = TimeSpan.FromMilliseconds(1),
            ProxyUrl = stub.BaseAddress,
        };
        configure?.Invoke(options);
        return new TensorlakeClient(options);
    }

    private const string Json = "application/json";

    [Fact]
    public void The_lifecycle_base_follows_the_sdk_rules()
    {
        Assert.Equal("https://sandbox.tensorlake.ai", new TensorlakeClientOptions().ResolveLifecycleBase());
        Assert.Equal("http://127.0.0.1:8900/v1/namespaces/team-a",
            new TensorlakeClientOptions { ApiUrl = new Uri("http://127.0.0.1:8900"), Namespace = "team-a" }.ResolveLifecycleBase());
        Assert.Equal("https://example.test", new TensorlakeClientOptions { ApiUrl = new Uri("https://example.test") }.ResolveLifecycleBase());
        Assert.Equal(new Uri("https://8080-sbx1.sandbox.us-east-1.aws.tensorlake.ai/"), TensorlakeClient.PortUrl("https://sandbox.us-east-1.aws.tensorlake.ai", "sbx1", 8080));
        Assert.Equal(new Uri("http://sbx1.127.0.0.1:9443/"), TensorlakeClient.PortUrl("http://127.0.0.1:9443", "sbx1", 9501));
    }

    [Fact]
    public async Task Create_sends_only_what_is_set_and_reads_a_blocking_answer()
    {
        await using var stub = await StubAsync((route, _) => route == "POST /sandboxes"
            ? (200, """{"sandbox_id":"sbx_1","status":"running","routing_hint":"h1","sandbox_url":"https://sbx_1.sandbox.tensorlake.ai","name":"env-a"}""", Json)
            : (404, "not found", "text/plain"));
        using var client = Client(stub);
        var created = await client.CreateAsync(new CreateSandboxRequest { Name = "env-a", ExposedPorts = [8080] });
        Assert.Equal("sbx_1", created.CanonicalId);
        Assert.Equal("running", created.Status);
        var request = Assert.Single(stub.Requests);
        Assert.Equal("""{"resources":{"cpus":1,"memory_mb":1024},"name":"env-a","exposed_ports":[8080]}""", request.Body);
        Assert.Equal("Bearer tl_apiKey_test", request.Headers["authorization"]);
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", request.Headers["traceparent"]);
        Assert.False(request.Headers.ContainsKey("x-forwarded-organization-id")); // API keys carry their own scope
    }

    [Fact]
    public async Task A_504_with_a_json_body_is_a_timeout_answer_and_create_is_never_retried()
    {
        var calls = 0;
        await using var stub = await StubAsync((_, _) => Interlocked.Increment(ref calls) == 1
            ? (504, """{"sandbox_id":"sbx_2","status":"timeout"}""", Json)
            : (503, "busy", "text/plain"));
        using var client = Client(stub);
        Assert.Equal("timeout", (await client.CreateAsync(new CreateSandboxRequest())).Status);
        var ex = await Assert.ThrowsAsync<TensorlakeException>(() => client.CreateAsync(new CreateSandboxRequest()));
        Assert.Equal(503, ex.Status);
        Assert.Equal("busy", ex.ErrorMessage);
        Assert.Equal(2, calls);
    }

    [Fact]
    public async Task Get_reads_both_spellings_of_drifting_fields_and_any_timestamp_unit()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "GET /sandboxes/a" => (200, """{"id":"a","status":"running","resources":{"cpus":2,"memory_mb":2048,"ephemeral_disk_mb":10240},"network":{"allow_internet_access":false,"allow_out":["10.0.0.0/8"],"deny_out":[]},"created_at":1710000000000,"exposed_ports":[8080]}""", Json),
            "GET /sandboxes/b" => (200, """{"sandbox_id":"b","status":"suspended","resources":{"cpus":1,"memory_mb":1024,"disk_mb":20480},"network_policy":{"allow_internet_access":true,"allow_out":[],"deny_out":["1.2.3.4"]},"created_at":1710000000}""", Json),
            "GET /sandboxes/c" => (200, """{"id":"c","status":"terminated","created_at":1710000000000000,"termination_reason":"ImageNotFound"}""", Json),
            _ => (404, "Sandbox not found", "text/plain"),
        });
        using var client = Client(stub);
        var a = await client.GetAsync("a");
        var b = await client.GetAsync("b");
        var c = await client.GetAsync("c");
        Assert.Equal(("a", 10240, false), (a.CanonicalId, a.Resources!.Disk!.Value, a.EffectiveNetwork!.AllowInternetAccess));
        Assert.Equal(("b", 20480, "1.2.3.4"), (b.CanonicalId, b.Resources!.Disk!.Value, b.EffectiveNetwork!.DenyOut[0]));
        var expected = DateTimeOffset.FromUnixTimeSeconds(1_710_000_000);
        Assert.Equal(expected, a.CreatedAt);
        Assert.Equal(expected, b.CreatedAt);
        Assert.Equal(expected, c.CreatedAt);
        var missing = await Assert.ThrowsAsync<TensorlakeException>(() => client.GetAsync("nope"));
        Assert.True(missing.IsNotFound);
        Assert.Equal("Sandbox not found", missing.ErrorMessage);
    }

    [Fact]
    public async Task Reads_are_retried_on_502_503_504_and_list_follows_cursors()
    {
        var fails = 0;
        await using var stub = await StubAsync((route, _) => route switch
        {
            "GET /sandboxes?limit=100" when Interlocked.Increment(ref fails) <= 2 => (503, "warming up", "text/plain"),
            "GET /sandboxes?limit=100" => (200, """{"sandboxes":[{"id":"a","status":"running"}],"next_cursor":"Y3Vy"}""", Json),
            "GET /sandboxes?limit=100&cursor=Y3Vy" => (200, """{"items":[{"id":"b","status":"terminated"}],"next_cursor":null}""", Json),
            _ => (404, "", "text/plain"),
        });
        using var client = Client(stub);
        var all = await client.ListAllAsync().ToListAsync();
        Assert.Equal(["a", "b"], all.Select(s => s.CanonicalId));
        Assert.Equal(4, stub.Requests.Count);
    }

    [Fact]
    public async Task Update_sends_the_network_tri_state_and_validates_ports()
    {
        await using var stub = await StubAsync((_, _) => (200, """{"id":"a","status":"running"}""", Json));
        using var client = Client(stub);
        await client.UpdateAsync("a", new UpdateSandboxRequest { ExposedPorts = [9000, 8080, 8080], AllowUnauthenticatedAccess = true });
        await client.UpdateAsync("a", new UpdateSandboxRequest { ClearNetwork = true });
        await client.UpdateAsync("a", new UpdateSandboxRequest { Network = new NetworkPolicy { AllowInternetAccess = false } });
        Assert.Equal("""{"allow_unauthenticated_access":true,"exposed_ports":[8080,9000]}""", stub.Requests[0].Body);
        Assert.Equal("""{"network":null}""", stub.Requests[1].Body);
        Assert.Equal("""{"network":{"allow_internet_access":false,"allow_out":[],"deny_out":[]}}""", stub.Requests[2].Body);
        Assert.All(stub.Requests, r => Assert.Equal("PATCH", r.Method));
        await Assert.ThrowsAsync<ArgumentException>(() => client.UpdateAsync("a", new UpdateSandboxRequest { ExposedPorts = [9501] }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.UpdateAsync("a", new UpdateSandboxRequest { ExposedPorts = [70000] }));
    }

    [Fact]
    public async Task Suspend_and_resume_tell_started_from_already_done_and_send_empty_bodies()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "POST /sandboxes/named/suspend" => (202, "", null),
            "POST /sandboxes/named/resume" => (200, "", null),
            _ => (400, "ephemeral sandboxes cannot be suspended", "text/plain"),
        });
        using var client = Client(stub);
        Assert.True(await client.SuspendAsync("named"));
        Assert.False(await client.ResumeAsync("named"));
        var ex = await Assert.ThrowsAsync<TensorlakeException>(() => client.SuspendAsync("ephemeral"));
        Assert.Equal((400, "ephemeral sandboxes cannot be suspended"), (ex.Status, ex.ErrorMessage));
        Assert.Equal("0", stub.Requests[0].Headers["content-length"]);
        Assert.Single(stub.Requests, r => r.PathAndQuery == "/sandboxes/ephemeral/suspend"); // not retried
    }

    [Fact]
    public async Task Snapshots_send_a_type_only_when_asked_and_wait_until_restorable()
    {
        var polls = 0;
        await using var stub = await StubAsync((route, _) => route switch
        {
            "POST /sandboxes/a/snapshot" => (200, """{"snapshot_id":"snap_1","status":"in_progress"}""", Json),
            "GET /snapshots/snap_1" => Interlocked.Increment(ref polls) < 3
                ? (200, """{"id":"snap_1","status":"in_progress","sandbox_id":"a"}""", Json)
                : (200, """{"id":"snap_1","status":"local_ready","sandbox_id":"a","snapshot_type":"memory","size_bytes":25000000}""", Json),
            "GET /snapshots/snap_bad" => (200, """{"snapshot_id":"snap_bad","status":"failed","error":"disk full"}""", Json),
            "GET /snapshots" => (200, """{"snapshots":[{"id":"snap_1","status":"completed"}]}""", Json),
            "DELETE /snapshots/snap_1" => (204, "", null),
            _ => (404, "Snapshot not found", "text/plain"),
        });
        using var client = Client(stub);
        await client.SnapshotAsync("a");
        await client.SnapshotAsync("a", SnapshotType.Memory);
        Assert.Equal("", stub.Requests[0].Body);
        Assert.Equal("""{"snapshot_type":"memory"}""", stub.Requests[1].Body);
        var ready = await client.WaitForSnapshotAsync("snap_1", TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(10));
        Assert.Equal(("snap_1", "memory", true), (ready.CanonicalId, ready.SnapshotType, ready.IsRestorable));
        var failed = await Assert.ThrowsAsync<SnapshotFailedException>(() => client.WaitForSnapshotAsync("snap_bad", TimeSpan.FromSeconds(5)));
        Assert.Contains("disk full", failed.Message, StringComparison.Ordinal);
        Assert.Single(await client.ListSnapshotsAsync());
        await client.DeleteSnapshotAsync("snap_1");
        await Assert.ThrowsAsync<ArgumentException>(() => client.SnapshotAsync("a", "full"));
    }

    [Fact]
    public async Task Personal_access_tokens_carry_both_scope_headers()
    {
        await using var stub = await StubAsync((_, _) => (200, """{"sandboxes":[]}""", Json));
        using var client = Client(stub, o => (o.OrganizationId, o.ProjectId) = ("org_1", "proj_1"));
        await client.ListAsync();
        Assert.Equal("org_1", stub.Requests[0].Headers["x-forwarded-organization-id"]);
        Assert.Equal("proj_1", stub.Requests[0].Headers["x-forwarded-project-id"]);
    }

    [Fact]
    public async Task The_proxy_routes_by_header_and_refuses_without_a_sandbox_url()
    {
        await using var stub = await StubAsync((_, _) => (200, """{"healthy":true}""", Json));
        using (var cloud = Client(stub))
        {
            Assert.True(await cloud.Proxy(new SandboxInfo { Id = "sbx_1", SandboxUrl = stub.BaseAddress.ToString(), RoutingHint = "hint" }).HealthAsync());
        }

        using (var local = Client(stub, o => o.ApiUrl = new Uri("http://127.0.0.1:8900")))
        {
            Assert.True(await local.Proxy(new SandboxInfo { Id = "sbx_2", SandboxUrl = stub.BaseAddress.ToString() }).HealthAsync());
        }

        Assert.Equal("sbx_1", stub.Requests[0].Headers["x-tensorlake-sandbox-id"]);
        Assert.Equal("hint", stub.Requests[0].Headers["x-tensorlake-route-hint"]);
        Assert.Equal("sbx_2.local", stub.Requests[1].Headers["host"]);
        Assert.Equal("/api/v1/health", stub.Requests[1].PathAndQuery);

        using var strict = Client(stub, o => o.ProxyUrl = null);
        var ex = Assert.Throws<TensorlakeException>(() => strict.Proxy(new SandboxInfo { Id = "sbx_3" }));
        Assert.Equal("NO_SANDBOX_URL", ex.Code);
    }

    [Fact]
    public async Task Run_streams_frames_by_shape_and_maps_signals_and_missing_exits()
    {
        await using var stub = await StubAsync((route, c) =>
        {
            var body = new StreamReader(c.Request.Body).ReadToEndAsync().GetAwaiter().GetResult();
            var command = JsonDocument.Parse(body).RootElement.GetProperty("command").GetString();
            var frames = command switch
            {
                "ok" => new[] { """{"handle":1,"pid":42,"started_at":1710000000000}""", """{"line":"hello","timestamp":1,"stream":"stdout"}""", """{"type":"heartbeat"}""",
                    """{"line":"oops","timestamp":2,"stream":"stderr"}""", """{"line":"world","timestamp":3,"stream":"stdout"}""", """{"exit_code":3}""" },
                "killed" => new[] { """{"handle":2,"pid":43,"started_at":1}""", """{"signal":9,"oom_killed":true}""" },
                _ => new[] { """{"handle":3,"pid":44,"started_at":1}""", """{"line":"partial","timestamp":1,"stream":"stdout"}""" },
            };
            return (200, string.Concat(frames.Select(f => $"data: {f}\n\n")), "text/event-stream");
        });
        using var client = Client(stub);
        var proxy = client.Proxy(new SandboxInfo { Id = "sbx", SandboxUrl = stub.BaseAddress.ToString() });
        var ok = await proxy.RunAsync(new RunProcessRequest { Command = "ok", Args = ["-c", "x"], Timeout = 5 });
        Assert.Equal(new CommandResult(3, "hello\nworld", "oops", null, 42), ok);
        var killed = await proxy.RunAsync(new RunProcessRequest { Command = "killed" });
        Assert.Equal((-9, 9, true), (killed.ExitCode, killed.Signal, killed.OomKilled));
        var lost = await Assert.ThrowsAsync<TensorlakeException>(() => proxy.RunAsync(new RunProcessRequest { Command = "cut" }));
        Assert.Equal("CONNECTION_CLOSED", lost.Code);
        Assert.Equal("text/event-stream", stub.Requests[0].Headers["accept"]);
        Assert.Equal("""{"command":"ok","args":["-c","x"],"timeout":5}""", stub.Requests[0].Body);
        Assert.Equal(3, stub.Requests.Count(r => r.PathAndQuery == "/api/v1/processes/run")); // never retried
    }

    [Fact]
    public async Task Files_processes_and_daemon_errors()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "GET /api/v1/files?path=%2Fworkspace%2Fa.txt" => (200, "hello", "application/octet-stream"),
            "PUT /api/v1/files?path=%2Fworkspace%2Fb.txt" => (204, "", null),
            "GET /api/v1/files?path=..%2Fetc" => (403, """{"error":"path traversal is not allowed","code":"PATH_TRAVERSAL"}""", Json),
            "GET /api/v1/files/list?path=%2Fworkspace" => (200, """{"path":"/workspace","entries":[{"name":"d","is_dir":true,"size":null,"modified_at":1710000000000},{"name":"a.txt","is_dir":false,"size":5,"modified_at":1710000000000}]}""", Json),
            "POST /api/v1/processes" => (201, """{"handle":7,"pid":99,"status":"running","exit_code":null,"signal":null,"oom_killed":false,"stdin_writable":true,"command":"sleep","args":["9"],"started_at":1710000000000,"ended_at":null}""", Json),
            "GET /api/v1/processes/99/output" => (200, """{"pid":99,"lines":["a","b"],"line_count":2}""", Json),
            "GET /api/v1/processes/web%20server" => (404, """{"error":"process not found","code":"NOT_FOUND"}""", Json),
            "GET /api/v1/processes/99/output/follow" => (200, "event: output\ndata: {\"line\":\"a\",\"timestamp\":0,\"stream\":\"stdout\"}\n\n: keep-alive\n\nevent: output\ndata: {\"line\":\"b\",\"timestamp\":5}\n\nevent: eof\ndata: {}\n\n", "text/event-stream"),
            _ => (404, """{"error":"no route","code":"NOT_FOUND"}""", Json),
        });
        using var client = Client(stub);
        var proxy = client.Proxy(new SandboxInfo { Id = "sbx", SandboxUrl = stub.BaseAddress.ToString() });
        Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(await proxy.ReadFileAsync("/workspace/a.txt")));
        await proxy.WriteFileAsync("/workspace/b.txt", "data"u8.ToArray());
        var traversal = await Assert.ThrowsAsync<TensorlakeException>(() => proxy.ReadFileAsync("../etc"));
        Assert.Equal((403, "PATH_TRAVERSAL", "path traversal is not allowed"), (traversal.Status, traversal.Code, traversal.ErrorMessage));
        var listing = await proxy.ListDirectoryAsync("/workspace");
        Assert.Equal([("d", true, (long?)null), ("a.txt", false, 5)], listing.Entries.Select(e => (e.Name, e.IsDir, e.Size)));
        var started = await proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["9"], StdinMode = "pipe" });
        Assert.Equal((99, "running", true), (started.Pid, started.Status, started.StdinWritable));
        Assert.Equal(["a", "b"], (await proxy.GetOutputAsync("99")).Lines);
        Assert.Equal(["a", "b"], await proxy.FollowOutputAsync("99").Select(e => e.Line!).ToListAsync());
        Assert.Equal("NOT_FOUND", (await Assert.ThrowsAsync<TensorlakeException>(() => proxy.GetProcessAsync("web server"))).Code);
    }
}
