using System.Net;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Protocol.Tests;

/// <summary>The client against the hosted service's wire quirks (reference/managed-agents-api.md §2, worker-protocol.md §3).</summary>
public sealed class WireQuirkTests
{
    private static ManagedAgentsClient Client(LoopbackStub stub, ManagedAgentsCredential? credential = null, int retries = 0) =>
        new(credential ?? ManagedAgentsCredential.Bearer("envkey"), new ManagedAgentsClientOptions
        {
            BaseUrl = stub.BaseAddress,
            MaxRetries = retries,
            InitialRetryDelay = TimeSpan.FromMilliseconds(10),
        });

    [Fact]
    public async Task Empty_poll_as_200_json_null_is_no_work()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("null");
        });
        using var client = Client(stub);
        Assert.Null(await client.Work.PollAsync("env_1", blockMs: 10, workerId: "w1"));
    }

    [Fact]
    public async Task Empty_poll_as_204_is_no_work()
    {
        await using var stub = await LoopbackStub.StartAsync(c =>
        {
            c.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        using var client = Client(stub);
        Assert.Null(await client.Work.PollAsync("env_1"));
    }

    [Fact]
    public async Task Poll_sends_block_ms_reclaim_and_worker_id()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""{"type":"work","id":"work_1","environment_id":"env_1","data":{"type":"session","id":"sesn_1"},"state":"queued","metadata":{},"secret":"abc","created_at":"2026-01-01T00:00:00Z"}""");
        });
        using var client = Client(stub);
        var item = await client.Work.PollAsync("env_1", blockMs: 999, reclaimOlderThanMs: 2000, workerId: "host-abc");
        Assert.Equal("work_1", item!.Id);
        Assert.Equal("sesn_1", item.Data.Id);
        var request = Assert.Single(stub.Requests);
        Assert.Equal("/v1/environments/env_1/work/poll?block_ms=999&reclaim_older_than_ms=2000", request.PathAndQuery);
        Assert.Equal("host-abc", request.Headers["anthropic-worker-id"]);
    }

    [Fact]
    public async Task Stop_accepts_204_without_body_and_409_means_already_stopped()
    {
        var calls = 0;
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            if (Interlocked.Increment(ref calls) == 1)
            {
                c.Response.StatusCode = 204;
                return;
            }

            c.Response.StatusCode = 409;
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""{"type":"error","error":{"type":"conflict_error","message":"already stopped"},"request_id":"req_1"}""");
        });
        using var client = Client(stub);
        Assert.True(await client.Work.StopAsync("env_1", "work_1", force: true));
        Assert.False(await client.Work.StopAsync("env_1", "work_1", force: true));
        Assert.Equal("""{"force":true}""", stub.Requests[0].Body);
    }

    [Fact]
    public async Task Heartbeat_412_carries_the_servers_view_of_the_lease()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.StatusCode = 412;
            c.Response.Headers["request-id"] = "req_412";
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""
                {"type":"error","error":{"type":"precondition_failed_error","message":"lease held elsewhere",
                 "details":{"error_code":"heartbeat_precondition_failed","current_state":{"state":"active","ttl_seconds":60,"last_heartbeat":"2026-01-01T00:00:01Z","lease_extended":false}}},
                 "request_id":"req_412"}
                """);
        });
        using var client = Client(stub);
        var ex = await Assert.ThrowsAsync<HeartbeatPreconditionFailedException>(() =>
            client.Work.HeartbeatAsync("env_1", "work_1", WorkOperations.NoHeartbeat));
        Assert.Equal(412, ex.Status);
        Assert.Equal("req_412", ex.RequestId);
        Assert.Equal("active", ex.CurrentState!.State);
        Assert.Equal("2026-01-01T00:00:01Z", ex.CurrentState.LastHeartbeat);
        Assert.Equal("/v1/environments/env_1/work/work_1/heartbeat?expected_last_heartbeat=NO_HEARTBEAT", stub.Requests[0].PathAndQuery);
        Assert.Equal("", stub.Requests[0].Body);
    }

    [Fact]
    public async Task Error_envelope_becomes_a_typed_exception_with_status_type_and_request_id()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.StatusCode = 404;
            c.Response.Headers["request-id"] = "req_abc";
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""{"type":"error","error":{"type":"not_found_error","message":"session sesn_x not found"},"request_id":"req_abc"}""");
        });
        using var client = Client(stub, retries: 2);
        var ex = await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Sessions.GetAsync("sesn_x"));
        Assert.Equal(404, ex.Status);
        Assert.Equal("not_found_error", ex.ErrorType);
        Assert.Equal("req_abc", ex.RequestId);
        Assert.True(ex.IsFatal);
        Assert.Single(stub.Requests); // a fatal 4xx is never retried
    }

    [Fact]
    public async Task Transient_errors_are_retried_and_x_should_retry_false_is_honoured()
    {
        var calls = 0;
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            var n = Interlocked.Increment(ref calls);
            c.Response.ContentType = "application/json";
            if (c.Request.Path.Value!.EndsWith("/stats", StringComparison.Ordinal))
            {
                if (n < 3)
                {
                    c.Response.StatusCode = 529;
                    await c.Response.WriteAsync("""{"type":"error","error":{"type":"overloaded_error","message":"busy"}}""");
                    return;
                }

                await c.Response.WriteAsync("""{"type":"work_queue_stats","depth":2,"pending":1,"oldest_queued_at":null,"workers_polling":3}""");
                return;
            }

            c.Response.StatusCode = 409;
            c.Response.Headers["x-should-retry"] = "false";
            await c.Response.WriteAsync("""{"type":"error","error":{"type":"conflict_error","message":"no"}}""");
        });
        using var client = Client(stub, retries: 2);
        var stats = await client.Work.StatsAsync("env_1");
        Assert.Equal(2, stats.Depth);
        Assert.Equal(3, stats.WorkersPolling);
        Assert.Equal(3, calls);

        var before = calls;
        await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Work.AckAsync("env_1", "w"));
        Assert.Equal(before + 1, calls);
    }

    [Fact]
    public async Task Headers_carry_version_beta_and_exactly_one_credential()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""{"data":[],"next_page":null}""");
        });
        using (var bearer = Client(stub, ManagedAgentsCredential.Bearer("sk-ant-oat01-x")))
        {
            await bearer.Events.ListAsync("sesn_1", limit: 1000, order: "asc", types: ["agent.tool_use", "user.tool_result"]);
        }

        using (var apiKey = Client(stub, ManagedAgentsCredential.ApiKey("sk-ant-api03-y")))
        {
            await apiKey.Sessions.ListAsync();
        }

        var (first, second) = (stub.Requests[0], stub.Requests[1]);
        Assert.Equal("2023-06-01", first.Headers["anthropic-version"]);
        Assert.Equal("managed-agents-2026-04-01", first.Headers["anthropic-beta"]);
        Assert.Equal("Bearer sk-ant-oat01-x", first.Headers["authorization"]);
        Assert.False(first.Headers.ContainsKey("x-api-key"));
        Assert.Contains("types%5B%5D=agent.tool_use&types%5B%5D=user.tool_result", first.PathAndQuery, StringComparison.Ordinal);
        Assert.Equal("sk-ant-api03-y", second.Headers["x-api-key"]);
        Assert.False(second.Headers.ContainsKey("authorization"));
    }

    [Fact]
    public async Task Credentials_never_appear_in_exception_messages()
    {
        await using var stub = await LoopbackStub.StartAsync(c =>
        {
            c.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        using var client = Client(stub, ManagedAgentsCredential.Bearer("sk-ant-oat01-SECRET"));
        var ex = await Assert.ThrowsAsync<ManagedAgentsException>(() => client.Sessions.GetAsync("sesn_1"));
        Assert.DoesNotContain("SECRET", ex.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("SECRET", ManagedAgentsCredential.Bearer("sk-ant-oat01-SECRET").ToString(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.InternalServerError, (HttpStatusCode)ex.Status);
    }
}
