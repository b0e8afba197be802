using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Sandboxes.Tests;

/// <summary>
/// The client's pool calls against a loopback stub answering in the shapes of Tensorlake's SDK
/// (<c>crates/cloud-sdk/src/sandboxes/{mod,models}.rs</c>, <c>src/tensorlake/sandbox/client.py</c>): what is sent, what
/// is read, and which answers become which typed error.
/// </summary>
public sealed class PoolWireTests
{
    private const string Json = "application/json";

    private static Task<LoopbackStub> StubAsync(Func<string, HttpContext, (int Status, string Body, string ContentType)> answer) =>
        LoopbackStub.StartAsync(async c =>
        {
            var (status, body, type) = answer($"{c.Request.Method} {c.Request.Path}", c);
            c.Response.StatusCode = status;
            c.Response.ContentType = type;
            await c.Response.WriteAsync(body);
        });

    private static TensorlakeClient Client(LoopbackStub stub) => new(new TensorlakeClientOptions
    {
        ApiUrl = new Uri("https://api.tensorlake.ai"),
        LifecycleUrl = stub.BaseAddress,
        ApiKey = "tl_apiKey_test",
        RetryBaseDelay = TimeSpan.FromMilliseconds(1),
    });

    private static SandboxPoolRequest Request() => new()
    {
        Image = "tensorlake/ubuntu-minimal",
        Resources = new SandboxPoolResources { Cpus = 2, MemoryMb = 2048, EphemeralDiskMb = 4096 },
        MaxContainers = 3,
        WarmContainers = 1,
    };

    [Fact]
    public async Task Create_sends_the_sdk_body_and_reads_the_pool_id()
    {
        await using var stub = await StubAsync((route, _) => route == "POST /sandbox-pools"
            ? (200, """{"pool_id":"pool-1","namespace":"default"}""", Json)
            : (404, "not found", "text/plain"));
        using var client = Client(stub);
        var request = Request();
        request.Entrypoint = ["sleep", "300"];
        request.Network = new NetworkPolicy { AllowInternetAccess = false };

        var created = await client.CreatePoolAsync(request);

        Assert.Equal(("pool-1", "default"), (created.PoolId, created.Namespace));
        // timeout_secs always (0 = none), as the SDK's SandboxPoolRequest; nothing unset.
        Assert.Equal("""{"image":"tensorlake/ubuntu-minimal","resources":{"cpus":2,"memory_mb":2048,"ephemeral_disk_mb":4096},"timeout_secs":0,"entrypoint":["sleep","300"],"max_containers":3,"warm_containers":1,"network":{"allow_internet_access":false,"allow_out":[],"deny_out":[]}}""",
            Assert.Single(stub.Requests).Body);
        Assert.Throws<ArgumentException>(() => { _ = client.CreatePoolAsync(new SandboxPoolRequest { ClearNetwork = true }); });
    }

    [Fact]
    public async Task Get_and_list_read_either_id_either_policy_spelling_and_the_containers()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "GET /sandbox-pools/pool-1" => (200, """
                {"pool_id":"pool-1","namespace":"default","image":"img","resources":{"cpus":1.0,"memory_mb":1024,"ephemeral_disk_mb":1024},"timeout_secs":0,
                 "max_containers":2,"warm_containers":1,"network_policy":{"allow_internet_access":false,"allow_out":[],"deny_out":[]},
                 "containers":[{"id":"c1","state":"Idle","sandbox_id":null,"executor_id":"e1"},{"id":"c2","state":"Running","sandbox_id":"sbx-2","executor_id":"e1"}],
                 "created_at":1710000000000}
                """, Json),
            "GET /sandbox-pools" => (200, """{"pools":[{"id":"pool-2","namespace":"default","image":"img","resources":{"cpus":1.0,"memory_mb":512,"disk_mb":2048},"network":{"allow_internet_access":true,"allow_out":["10.0.0.0/8"],"deny_out":[]}}]}""", Json),
            _ => (404, "Sandbox pool not found", "text/plain"),
        });
        using var client = Client(stub);

        var pool = await client.GetPoolAsync("pool-1");
        Assert.Equal(("pool-1", false, 2, 1), (pool.CanonicalId, pool.EffectiveNetwork!.AllowInternetAccess, pool.MaxContainers, pool.WarmContainers));
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_710_000_000), pool.CreatedAt);
        Assert.Equal([("c1", true, "Idle"), ("c2", false, "Running")], pool.Containers!.Select(c => (c.Id, c.IsWarm, c.State)).ToList());

        var listed = Assert.Single(await client.ListPoolsAsync());
        Assert.Equal(("pool-2", 2048, "10.0.0.0/8"), (listed.CanonicalId, listed.Resources!.Disk!.Value, listed.EffectiveNetwork!.AllowOut[0]));
        Assert.Null(listed.Containers);

        var missing = await Assert.ThrowsAsync<PoolNotFoundException>(() => client.GetPoolAsync("nope"));
        Assert.Equal((404, "nope", "Sandbox pool not found"), (missing.Status, missing.PoolId, missing.ErrorMessage));
    }

    [Fact]
    public async Task Update_is_a_put_whose_network_is_kept_as_the_current_policy_cleared_with_null_or_replaced()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "GET /sandbox-pools/pool-1" => (200, """{"pool_id":"pool-1","namespace":"default","image":"img","resources":{"cpus":1,"memory_mb":1024},"network_policy":{"allow_internet_access":false,"allow_out":[],"deny_out":["1.2.3.4"]}}""", Json),
            "PUT /sandbox-pools/pool-1" => (200, """{"pool_id":"pool-1","namespace":"default","image":"img","resources":{"cpus":1,"memory_mb":1024}}""", Json),
            _ => (404, "Sandbox pool not found", "text/plain"),
        });
        using var client = Client(stub);

        // Kept: as the SDK, sent as the policy the pool has now (older services clear a policy the body leaves out).
        await client.UpdatePoolAsync("pool-1", Request());
        Assert.Equal(["GET /sandbox-pools/pool-1", "PUT /sandbox-pools/pool-1"], stub.Requests.Select(r => $"{r.Method} {r.PathAndQuery}"));
        Assert.Contains("\"network\":{\"allow_internet_access\":false,\"allow_out\":[],\"deny_out\":[\"1.2.3.4\"]}", stub.Requests[1].Body, StringComparison.Ordinal);

        var clear = Request();
        clear.ClearNetwork = true;
        await client.UpdatePoolAsync("pool-1", clear);
        Assert.EndsWith("\"warm_containers\":1,\"network\":null}", stub.Requests[2].Body, StringComparison.Ordinal);

        var replace = Request();
        replace.Network = new NetworkPolicy { AllowOut = ["api.example.com"] };
        await client.UpdatePoolAsync("pool-1", replace);
        Assert.EndsWith("\"network\":{\"allow_internet_access\":true,\"allow_out\":[\"api.example.com\"],\"deny_out\":[]}}", stub.Requests[3].Body, StringComparison.Ordinal);
        Assert.Equal(4, stub.Requests.Count);
        Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(() => client.UpdatePoolAsync("nope", clear))).Status);
    }

    [Fact]
    public async Task Claim_is_an_empty_post_never_retried_whose_answers_and_errors_are_typed()
    {
        var claims = 0;
        await using var stub = await StubAsync((route, _) => route switch
        {
            "POST /sandbox-pools/pool-1/sandboxes" => Interlocked.Increment(ref claims) switch
            {
                1 => (200, """{"sandbox_id":"sbx-1","status":"running","sandbox_url":"https://sbx-1.sandbox.tensorlake.ai","claim_configuration_applied":true}""", Json),
                2 => (200, """{"sandbox_id":"sbx-2","status":"pending","pending_reason":"pool_at_capacity"}""", Json),
                3 => (504, """{"sandbox_id":"sbx-3","status":"timeout"}""", Json),
                4 => (429, "pool pool-1 is at capacity: 2 of its max_containers 2 sandboxes are alive", "text/plain"),
                _ => (503, "busy", "text/plain"),
            },
            _ => (404, "Sandbox pool not found", "text/plain"),
        });
        using var client = Client(stub);

        var warm = await client.ClaimAsync("pool-1");
        Assert.Equal(("sbx-1", SandboxStatus.Running, true), (warm.CanonicalId, warm.Status, warm.ClaimConfigurationApplied));
        var request = Assert.Single(stub.Requests);
        Assert.Equal(("", "0"), (request.Body, request.Headers["content-length"]));
        Assert.False(request.Headers.ContainsKey("content-type"));

        var queued = await client.ClaimAsync("pool-1");
        Assert.Equal((SandboxStatus.Pending, PendingReason.PoolAtCapacity), (queued.Status, queued.PendingReason));
        Assert.Equal(SandboxStatus.Timeout, (await client.ClaimAsync("pool-1")).Status);
        var full = await Assert.ThrowsAsync<PoolAtCapacityException>(() => client.ClaimAsync("pool-1"));
        Assert.Equal((429, "POOL_AT_CAPACITY", "pool-1"), (full.Status, full.Code, full.PoolId));
        Assert.StartsWith("pool pool-1 is at capacity", full.ErrorMessage, StringComparison.Ordinal);
        var busy = await Assert.ThrowsAsync<TensorlakeException>(() => client.ClaimAsync("pool-1"));
        Assert.Equal(503, busy.Status);
        Assert.Equal(5, claims); // a claim is not idempotent: the 503 was not retried
        Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(() => client.ClaimAsync("nope"))).Status);
    }

    [Fact]
    public async Task Delete_maps_409_to_pool_in_use_and_404_to_pool_not_found()
    {
        await using var stub = await StubAsync((route, _) => route switch
        {
            "DELETE /sandbox-pools/busy" => (409, "Cannot delete pool 'busy': active sandbox(es) are using it", "text/plain"),
            "DELETE /sandbox-pools/idle" => (200, "", "text/plain"),
            _ => (404, "Sandbox pool not found", "text/plain"),
        });
        using var client = Client(stub);

        await client.DeletePoolAsync("idle");
        var inUse = await Assert.ThrowsAsync<PoolInUseException>(() => client.DeletePoolAsync("busy"));
        Assert.Equal((409, "busy"), (inUse.Status, inUse.PoolId));
        Assert.Contains("active sandbox", inUse.ErrorMessage, StringComparison.Ordinal);
        Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(() => client.DeletePoolAsync("gone"))).Status);
    }
}
