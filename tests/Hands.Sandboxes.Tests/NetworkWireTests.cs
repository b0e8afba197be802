using System.Collections.Concurrent;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Sandboxes.Tests;

/// <summary>
/// The client's network telemetry reads against a loopback server answering in the shapes of Tensorlake's SDK
/// (<c>crates/cloud-sdk/src/sandboxes/network.rs</c>, <c>src/tensorlake/sandbox/network.py</c>): the path and query sent,
/// the fields read, the pager following <c>next_cursor</c>, and the checks made before anything is sent.
/// </summary>
public sealed class NetworkWireTests
{
    private const string Event = """
        {"namespace":"default","sandbox_id":"sbx","executor_id":"host","allocation_id":"sbx","capture_session":"cs-1","sequence":SEQ,"observed_at_ms":1800000000000,
         "event_kind":"connection_new","connection_id":"ct-1-2","observed_connections":1,"source_ip":"10.200.0.6","source_port":40000,"destination_ip":"10.200.0.5",
         "destination_port":443,"transport":"tcp","original_bytes":1300,"reply_bytes":null,"original_packets":7,"reply_packets":null,"kernel_started_at_ns":2,
         "kernel_destroyed_at_ns":null,"conntrack_status":14,"tcp_state":3,"detail":"established","observation_source":"conntrack","dns_name":null,
         "dns_query_type":null,"dns_response_code":null,"dns_answers":[],"policy_action":"allow"}
        """;

    private static TensorlakeClient Client(LoopbackStub stub) => new(new TensorlakeClientOptions
    {
        ApiUrl = stub.BaseAddress,
        Namespace = "team",
        ApiKey = "tl_apiKey_test",
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
    });

    [Fact]
    public async Task The_pager_follows_next_cursor_and_sends_the_query_on_every_page()
    {
        var seen = new ConcurrentQueue<string>();
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            seen.Enqueue($"{c.Request.Path}{c.Request.QueryString}");
            var second = c.Request.Query["cursor"] == "c1";
            var events = second ? Event.Replace("SEQ", "3", StringComparison.Ordinal) : $"{Event.Replace("SEQ", "1", StringComparison.Ordinal)},{Event.Replace("SEQ", "2", StringComparison.Ordinal)}";
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync($$"""{"events":[{{events}}],"next_cursor":{{(second ? "null" : "\"c1\"")}},"from_ms":10,"to_ms":20}""");
        });
        using var client = Client(stub);

        var events = new List<NetworkEvent>();
        await foreach (var e in client.GetNetworkEventsPageable("sbx", new NetworkQuery { FromMs = 10, ToMs = 20, Limit = 2 }))
        {
            events.Add(e);
        }

        Assert.Equal([1L, 2L, 3L], events.Select(e => e.Sequence));
        Assert.Equal(["/v1/namespaces/team/sandboxes/sbx/network/events?from_ms=10&to_ms=20&limit=2", "/v1/namespaces/team/sandboxes/sbx/network/events?from_ms=10&to_ms=20&limit=2&cursor=c1"], seen);
        var first = events[0];
        Assert.Equal(("conntrack", "allow", 1300L, (long?)null, 3, 14u), (first.ObservationSource, first.PolicyAction, first.OriginalBytes!.Value, first.ReplyBytes, first.TcpState!.Value, first.ConntrackStatus));
    }

    [Fact]
    public async Task A_cursor_that_repeats_ends_the_pages_instead_of_looping()
    {
        var calls = 0;
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            Interlocked.Increment(ref calls);
            c.Response.ContentType = "application/json";
            await c.Response.WriteAsync("""{"events":[],"next_cursor":"same","from_ms":0,"to_ms":1}""");
        });
        using var client = Client(stub);
        var pages = 0;
        await foreach (var _ in client.GetNetworkEventsPageable("sbx").AsPages())
        {
            pages++;
        }

        Assert.Equal((2, 2), (pages, calls));
    }

    [Fact]
    public async Task Destinations_and_status_read_the_sdk_fields_and_errors_keep_their_status()
    {
        await using var stub = await LoopbackStub.StartAsync(async c =>
        {
            var (status, body) = c.Request.Path.Value switch
            {
                "/v1/namespaces/team/sandboxes/sbx/network/destinations" => (200, """{"destinations":[{"destination_ip":"10.0.0.1","destination_port":443,"transport":"tcp","observed_connections":2,"original_bytes":null,"reply_bytes":50,"unknown_byte_connections":1,"degraded_connections":0}],"truncated":true,"from_ms":0,"to_ms":59999}"""),
                "/v1/namespaces/team/sandboxes/sbx/network/status" => (200, """{"state":"stale","last_observed_at_ms":5,"allocation_id":"a","coverage":["conntrack"],"limitations":["x"]}"""),
                _ => (404, "sandbox 'gone' not found"),
            };
            c.Response.StatusCode = status;
            c.Response.ContentType = status == 200 ? "application/json" : "text/plain";
            await c.Response.WriteAsync(body);
        });
        using var client = Client(stub);

        var destinations = await client.GetNetworkDestinationsAsync("sbx", new NetworkQuery { FromMs = 0 });
        var only = Assert.Single(destinations.Destinations);
        Assert.Equal(((long?)null, 50L, 1L, true, 59_999L), (only.OriginalBytes, only.ReplyBytes!.Value, only.UnknownByteConnections, destinations.Truncated, destinations.ToMs));
        var status = await client.GetNetworkStatusAsync("sbx");
        Assert.Equal(("stale", 5L, "conntrack"), (status.State, status.LastObservedAtMs!.Value, Assert.Single(status.Coverage)));
        var missing = await Assert.ThrowsAsync<TensorlakeException>(() => client.GetNetworkStatusAsync("gone"));
        Assert.True(missing.IsNotFound);
    }

    [Fact]
    public async Task Bad_queries_are_refused_before_anything_is_sent()
    {
        using var client = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("http://127.0.0.1:9"), ApiKey = "k" });
        Assert.Throws<ArgumentOutOfRangeException>(() => client.NetworkUrl("sbx", "events", new NetworkQuery { Limit = 501 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => client.NetworkUrl("sbx", "events", new NetworkQuery { Limit = 0 }));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetNetworkDestinationsAsync("sbx", new NetworkQuery { Cursor = "c" }));
        // The id is one path segment, and the telemetry base is the API host's, never the sandbox host's.
        Assert.Equal("http://127.0.0.1:9/v1/namespaces/default/sandboxes/a%2Fb/network/status", client.NetworkUrl("a/b", "status", null));
        using var cloud = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("https://api.tensorlake.ai"), ApiKey = "k" });
        Assert.Equal("https://api.tensorlake.ai/v1/namespaces/default/sandboxes/s/network/events?cursor=a%2Bb", cloud.NetworkUrl("s", "events", new NetworkQuery { Cursor = "a+b" }));
    }
}
