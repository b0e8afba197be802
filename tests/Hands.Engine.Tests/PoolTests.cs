using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// Warm pools on the real engine, in the wire shapes of Tensorlake's SDK: create, list, get (with containers), a full
/// replace with a tri-state network, delete (409 while a claimed sandbox lives), and claims from a warm pool, from an
/// empty one below and at <c>max_containers</c>; warm sandboxes have no idle clock, the refill follows every claim, and
/// a killed engine's pool comes back with its warm sandboxes re-attached and its refill resumed.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class PoolTests(EngineFixture engine)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static SandboxPoolRequest Pool(int? warm, int? max, List<string>? entrypoint = null, int timeoutSecs = 0) => new()
    {
        Image = "host",
        Resources = new SandboxPoolResources { Cpus = 1.0, MemoryMb = 256, EphemeralDiskMb = 1024 },
        TimeoutSecs = timeoutSecs,
        Entrypoint = entrypoint,
        WarmContainers = warm,
        MaxContainers = max,
    };

    [Fact]
    public async Task Pools_are_created_listed_read_replaced_and_deleted_in_the_sdk_shapes()
    {
        // As Tensorlake's Python SDK sends it: resources and timeout_secs always, the rest when set.
        var (status, body) = await RawAsync(engine, HttpMethod.Post, "/v1/namespaces/default/sandbox-pools", """
            {"image":"host","resources":{"cpus":1.0,"memory_mb":256,"ephemeral_disk_mb":1024},"timeout_secs":0,"entrypoint":["sleep","300"],
             "max_containers":3,"warm_containers":1,"network":{"allow_internet_access":false,"allow_out":[],"deny_out":[]}}
            """);
        Assert.Equal(200, status);
        var created = JsonNode.Parse(body)!.AsObject();
        Assert.Equal(["namespace", "pool_id"], created.Select(p => p.Key).Order());
        var id = created["pool_id"]!.GetValue<string>();
        try
        {
            // Its warm sandbox boots in the background: a container without a sandbox, Idle.
            var warm = Assert.Single(await PoolWaits.IdleAsync(engine.Client, id, 1));
            var read = JsonNode.Parse((await RawAsync(engine, HttpMethod.Get, $"/sandbox-pools/{id}")).Body)!.AsObject();
            // The id only as pool_id: the Rust SDK reads "id" as an alias of it and refuses both at once.
            Assert.False(read.ContainsKey("id"));
            Assert.Equal(id, read["pool_id"]!.GetValue<string>());
            Assert.Equal("default", read["namespace"]!.GetValue<string>());
            Assert.Equal("host", read["image"]!.GetValue<string>());
            Assert.Equal((1.0, 256, 1024), (read["resources"]!["cpus"]!.GetValue<double>(), read["resources"]!["memory_mb"]!.GetValue<int>(), read["resources"]!["ephemeral_disk_mb"]!.GetValue<int>()));
            Assert.Equal((0, 3, 1), (read["timeout_secs"]!.GetValue<int>(), read["max_containers"]!.GetValue<int>(), read["warm_containers"]!.GetValue<int>()));
            Assert.Equal("""["sleep","300"]""", read["entrypoint"]!.ToJsonString());
            Assert.False(read["network_policy"]!["allow_internet_access"]!.GetValue<bool>());
            var container = Assert.Single(read["containers"]!.AsArray())!.AsObject();
            Assert.Equal((warm.Id, "Idle", "local"), (container["id"]!.GetValue<string>(), container["state"]!.GetValue<string>(), container["executor_id"]!.GetValue<string>()));
            Assert.True(container.ContainsKey("sandbox_id") && container["sandbox_id"] is null);

            // A warm sandbox is no one's yet: not listed, not found, not reachable through the ingress.
            Assert.DoesNotContain(await engine.Client.ListAllAsync().ToListAsync(), s => s.CanonicalId == warm.Id);
            Assert.True((await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.GetAsync(warm.Id))).IsNotFound);
            using (var viaIngress = await SandboxWorkloads.PortGetAsync(engine.Engine, warm.Id, 9501, "/api/v1/processes", EngineFixture.ApiKey))
            {
                Assert.Equal(404, (int)viaIngress.StatusCode);
                Assert.Contains("SANDBOX_NOT_FOUND", await viaIngress.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }

            var listed = Assert.Single(await engine.Client.ListPoolsAsync(), p => p.CanonicalId == id);
            Assert.Null(listed.Containers);

            // A full replace without "network" keeps the policy; everything else is what the body says (no entrypoint now).
            (status, body) = await RawAsync(engine, HttpMethod.Put, $"/sandbox-pools/{id}",
                """{"image":"host","resources":{"cpus":1.0,"memory_mb":256,"ephemeral_disk_mb":1024},"timeout_secs":30,"max_containers":3,"warm_containers":1}""");
            Assert.Equal(200, status);
            var replaced = JsonNode.Parse(body)!.AsObject();
            Assert.False(replaced["network_policy"]!["allow_internet_access"]!.GetValue<bool>());
            Assert.Null(replaced["entrypoint"]);
            Assert.Equal(30, replaced["timeout_secs"]!.GetValue<int>());
            Assert.False(replaced.ContainsKey("containers"));
            // What a sandbox boots with changed: the warm one is recycled onto it.
            await Eventually.TrueAsync(async () => (await engine.Client.GetPoolAsync(id)).Containers is [{ State: PoolContainerState.Idle } only] && only.Id != warm.Id,
                "the warm sandbox to be replaced by one with the new configuration", Bound);
            Assert.False(engine.Engine.Sandboxes.AllAlive().Any(s => s.Id == warm.Id), "the old warm sandbox is gone");

            // "network": null clears the policy.
            (status, body) = await RawAsync(engine, HttpMethod.Put, $"/sandbox-pools/{id}",
                """{"image":"host","resources":{"cpus":1.0,"memory_mb":256,"ephemeral_disk_mb":1024},"timeout_secs":30,"max_containers":3,"warm_containers":1,"network":null}""");
            Assert.Equal(200, status);
            Assert.Null(JsonNode.Parse(body)!["network_policy"]);

            // An object replaces it; the client sends that, and a larger warm target is filled.
            var update = Pool(warm: 2, max: 3);
            update.Network = new NetworkPolicy { AllowOut = ["10.0.0.0/8"] };
            var updated = await engine.Client.UpdatePoolAsync(id, update);
            Assert.Equal(["10.0.0.0/8"], updated.EffectiveNetwork!.AllowOut);
            Assert.Equal(2, updated.WarmContainers);
            var warmNow = await PoolWaits.IdleAsync(engine.Client, id, 2);

            // Deleting it removes its warm sandboxes (containers, mounts, namespaces), and it is gone.
            await engine.Client.DeletePoolAsync(id);
            Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(() => engine.Client.GetPoolAsync(id))).Status);
            Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(() => engine.Client.DeletePoolAsync(id))).Status);
            await Eventually.TrueAsync(() => !engine.Engine.Sandboxes.AllAlive().Any(s => s.PoolId == id), "the pool's warm sandboxes to be removed", Bound);
            foreach (var gone in warmNow)
            {
                Assert.False(Directory.Exists(Path.Combine(engine.DataDirectory, "runc", gone.Id)), $"warm sandbox {gone.Id}'s container is gone");
                Assert.False(File.Exists(Path.Combine(engine.DataDirectory, "netns", gone.Id)), $"warm sandbox {gone.Id}'s network namespace is gone");
            }
        }
        finally
        {
            await DeletePoolQuietlyAsync(engine.Client, id);
        }
    }

    [Fact]
    public async Task Bad_pools_and_claims_are_refused_with_the_rule_named_and_nothing_is_made()
    {
        var before = (await engine.Client.ListPoolsAsync()).Count;
        async Task<TensorlakeException> Refused(SandboxPoolRequest request) => await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.CreatePoolAsync(request));

        var tooWarm = await Refused(Pool(warm: 3, max: 2));
        Assert.Equal((400, "warm_containers (3) cannot exceed max_containers (2)"), (tooWarm.Status, tooWarm.ErrorMessage));
        var unknown = Pool(warm: 1, max: null);
        unknown.Image = "no-such-image";
        Assert.Contains("unknown image 'no-such-image'", (await Refused(unknown)).ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("0 or more", (await Refused(Pool(warm: -1, max: null))).ErrorMessage, StringComparison.Ordinal);
        var tiny = Pool(warm: 1, max: null);
        tiny.Resources!.MemoryMb = 10;
        Assert.Contains("memory_mb", (await Refused(tiny)).ErrorMessage, StringComparison.Ordinal);
        var (status, body) = await RawAsync(engine, HttpMethod.Post, "/sandbox-pools", """{"image":"host","max_containers":"many"}""");
        Assert.Equal(400, status);
        Assert.Contains("max_containers", body, StringComparison.Ordinal);
        Assert.Equal(before, (await engine.Client.ListPoolsAsync()).Count);

        foreach (var call in new Func<Task>[]
        {
            () => engine.Client.GetPoolAsync("pnosuchpool000000000"),
            () => engine.Client.UpdatePoolAsync("pnosuchpool000000000", Pool(1, 1)),
            () => engine.Client.DeletePoolAsync("pnosuchpool000000000"),
            () => engine.Client.ClaimAsync("pnosuchpool000000000"),
        })
        {
            Assert.Equal(404, (await Assert.ThrowsAsync<PoolNotFoundException>(call)).Status);
        }

        var id = (await engine.Client.CreatePoolAsync(Pool(warm: 0, max: 1))).PoolId;
        try
        {
            (status, body) = await RawAsync(engine, HttpMethod.Post, $"/sandbox-pools/{id}/sandboxes", """{"name":"mine"}""");
            Assert.Equal((400, true), (status, body.Contains("takes no name", StringComparison.Ordinal)));
            (status, body) = await RawAsync(engine, HttpMethod.Post, $"/sandbox-pools/{id}/sandboxes", """{"file_systems":[{"file_system_id":"skills","mount_path":"/mnt/skills"}]}""");
            Assert.Equal((400, true), (status, body.Contains("file-system mounts", StringComparison.Ordinal)));
            Assert.Empty((await engine.Client.GetPoolAsync(id)).Containers!);
        }
        finally
        {
            await DeletePoolQuietlyAsync(engine.Client, id);
        }
    }

    [Fact]
    public async Task A_claim_hands_out_the_warm_sandbox_for_good_and_the_pool_refills()
    {
        var id = (await engine.Client.CreatePoolAsync(Pool(warm: 1, max: 3, entrypoint: ["sleep", "300"]))).PoolId;
        string? claimedId = null;
        try
        {
            var warm = Assert.Single(await PoolWaits.IdleAsync(engine.Client, id, 1));
            // The claim's answer: a create's, plus claim_configuration_applied.
            var (status, body) = await RawAsync(engine, HttpMethod.Post, $"/v1/namespaces/default/sandbox-pools/{id}/sandboxes", null);
            Assert.Equal(200, status);
            var answer = JsonNode.Parse(body)!.AsObject();
            claimedId = answer["sandbox_id"]!.GetValue<string>();
            Assert.Equal(warm.Id, claimedId);
            Assert.Equal(("running", id, true), (answer["status"]!.GetValue<string>(), answer["pool_id"]!.GetValue<string>(), answer["claim_configuration_applied"]!.GetValue<bool>()));
            Assert.NotNull(answer["sandbox_url"]);
            Assert.Null(answer["name"]);

            // Now an ordinary sandbox: listed, running the pool's entrypoint, answering commands.
            var info = await engine.Client.GetAsync(claimedId);
            Assert.Equal((SandboxStatus.Running, id), (info.Status, info.PoolId));
            var proxy = engine.Client.Proxy(info);
            Assert.Contains(await proxy.ListProcessesAsync(), p => p.Command == "sleep");
            Assert.Equal("in the claimed one", (await proxy.RunAsync(new RunProcessRequest { Command = "echo", Args = ["in the claimed one"] })).Stdout.Trim());

            // It left the pool for good (its container is claimed), and a new warm one takes its place.
            await Eventually.TrueAsync(async () => (await engine.Client.GetPoolAsync(id)).Containers is { Count: 2 } containers
                && containers.Single(c => !c.IsWarm).SandboxId == claimedId && containers.Single(c => c.IsWarm) is { State: PoolContainerState.Idle } refill && refill.Id != claimedId,
                "a replacement warm sandbox after the claim", Bound);

            // What the orchestrator does next: a name, exposed ports and a policy, as on any sandbox.
            var name = SandboxWorkloads.UniqueName("claimed");
            await engine.Client.UpdateAsync(claimedId, new UpdateSandboxRequest { Name = name, ExposedPorts = [8080], Network = new NetworkPolicy { AllowInternetAccess = false } });
            var named = await engine.Client.GetAsync(name);
            Assert.Equal((claimedId, 8080, false), (named.CanonicalId, Assert.Single(named.ExposedPorts), named.EffectiveNetwork!.AllowInternetAccess));

            // In use while it lives: the pool cannot be deleted.
            var inUse = await Assert.ThrowsAsync<PoolInUseException>(() => engine.Client.DeletePoolAsync(id));
            Assert.Equal(409, inUse.Status);
            Assert.Contains(claimedId, inUse.ErrorMessage, StringComparison.Ordinal);

            await engine.Client.DeleteAsync(claimedId);
            await engine.Client.DeletePoolAsync(id);
            Assert.Equal(SandboxStatus.Terminated, (await engine.Client.GetAsync(claimedId)).Status);
        }
        finally
        {
            if (claimedId is not null)
            {
                await engine.DeleteQuietlyAsync(claimedId);
            }

            await DeletePoolQuietlyAsync(engine.Client, id);
        }
    }

    [Fact]
    public async Task A_claim_on_an_empty_pool_boots_one_below_max_and_answers_429_at_max()
    {
        var id = (await engine.Client.CreatePoolAsync(Pool(warm: 0, max: 2))).PoolId;
        var claimed = new List<string>();
        try
        {
            foreach (var _ in new[] { 1, 2 })
            {
                var claim = await engine.Client.ClaimAsync(id);
                Assert.Equal((SandboxStatus.Running, true), (claim.Status, claim.ClaimConfigurationApplied));
                claimed.Add(claim.CanonicalId);
            }

            Assert.Equal(2, claimed.Distinct().Count());
            var full = await Assert.ThrowsAsync<PoolAtCapacityException>(() => engine.Client.ClaimAsync(id));
            Assert.Equal((429, "POOL_AT_CAPACITY"), (full.Status, full.Code));
            Assert.Contains("max_containers 2", full.ErrorMessage, StringComparison.Ordinal);
            var (status, body) = await RawAsync(engine, HttpMethod.Post, $"/sandbox-pools/{id}/sandboxes", null);
            Assert.Equal(429, status);
            Assert.StartsWith("pool ", body, StringComparison.Ordinal);

            // A claimed sandbox gone frees its place; warm_containers 0 keeps nothing booted in between.
            await engine.Client.DeleteAsync(claimed[0]);
            var third = await engine.Client.ClaimAsync(id);
            Assert.Equal(SandboxStatus.Running, third.Status);
            claimed.Add(third.CanonicalId);
            var containers = (await engine.Client.GetPoolAsync(id)).Containers!;
            Assert.Equal(new[] { claimed[1], claimed[2] }.Order(StringComparer.Ordinal), containers.Select(c => c.SandboxId!).Order(StringComparer.Ordinal));
        }
        finally
        {
            foreach (var sandbox in claimed)
            {
                await engine.DeleteQuietlyAsync(sandbox);
            }

            await DeletePoolQuietlyAsync(engine.Client, id);
        }
    }

    [Fact]
    public async Task Warm_sandboxes_have_no_idle_clock_and_a_claimed_one_suspends_at_the_pool_timeout_from_its_claim()
    {
        // The engine's clock is a fake one the test moves, and the test runs each idle pass itself.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var own = await OwnEngine.StartAsync("hands-engine-pool-idle", o =>
        {
            o.TimeProvider = clock;
            o.IdleCheckInterval = TimeSpan.FromDays(1);
        });
        var id = (await own.Client.CreatePoolAsync(Pool(warm: 1, max: 2, timeoutSecs: 2))).PoolId;
        var warm = Assert.Single(await PoolWaits.IdleAsync(own.Client, id, 1));

        // Far beyond the pool's timeout: a warm sandbox waits, booted, for as long as it takes.
        clock.Advance(TimeSpan.FromMinutes(30));
        await own.Server.Sandboxes.IdleTickAsync(CancellationToken.None);
        Assert.Equal(SandboxStatus.Running, Assert.Single(own.Server.Sandboxes.AllAlive(), s => s.Id == warm.Id).Status);

        // Claimed, its clock starts now: still running 1.5 s later, suspended past 2 s (as Tensorlake's SDK tests
        // expect of a pool's sandbox: suspended, no outcome, not terminated).
        var claimed = await own.Client.ClaimAsync(id);
        Assert.Equal(warm.Id, claimed.CanonicalId);
        clock.Advance(TimeSpan.FromSeconds(1.5));
        await own.Server.Sandboxes.IdleTickAsync(CancellationToken.None);
        Assert.Equal(SandboxStatus.Running, (await own.Client.GetAsync(warm.Id)).Status);
        clock.Advance(TimeSpan.FromSeconds(1));
        await own.Server.Sandboxes.IdleTickAsync(CancellationToken.None);
        var suspended = await own.Client.GetAsync(warm.Id);
        Assert.Equal((SandboxStatus.Suspended, "frozen", null), (suspended.Status, suspended.SuspendTier, suspended.TerminationReason));
        Assert.True(await own.Client.ResumeAsync(warm.Id));
    }

    [Fact]
    public async Task A_killed_engine_keeps_its_pool_reattaches_its_warm_sandbox_and_resumes_the_refill()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-pool-restart-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string pool, claimed, kept;
            await using (var first = await EngineProcess.StartAsync(data, null))
            {
                using var client = Client(first.ApiAddress);
                pool = (await client.CreatePoolAsync(Pool(warm: 2, max: 4))).PoolId;
                var warm = await PoolWaits.IdleAsync(client, pool, 2);
                claimed = (await client.ClaimAsync(pool)).CanonicalId;
                // The claim took the older one; the other stays warm while the refill boots a third (the kill may cut it).
                kept = Assert.Single(warm, w => w.Id != claimed).Id;
                await first.KillAsync();
            }

            await using var second = await EngineProcess.StartAsync(data, null);
            using (var client = Client(second.ApiAddress))
            {
                var info = await client.GetPoolAsync(pool);
                Assert.Equal((2, 4, "host", 256), (info.WarmContainers, info.MaxContainers, info.Image, info.Resources!.MemoryMb));
                Assert.Equal(SandboxStatus.Running, (await client.GetAsync(claimed)).Status);
                // The warm one was re-attached (same container), and the refill is back at two.
                var warmNow = await PoolWaits.IdleAsync(client, pool, 2);
                Assert.Contains(warmNow, w => w.Id == kept);

                // The re-attached warm sandbox is the next claim's, and it serves.
                var again = await client.ClaimAsync(pool);
                Assert.Equal(kept, again.CanonicalId);
                Assert.Equal("alive", (await client.Proxy(again).RunAsync(new RunProcessRequest { Command = "echo", Args = ["alive"] })).Stdout.Trim());
                Assert.Equal("alive", (await client.Proxy(await client.GetAsync(claimed)).RunAsync(new RunProcessRequest { Command = "echo", Args = ["alive"] })).Stdout.Trim());

                await client.DeleteAsync(claimed);
                await client.DeleteAsync(again.CanonicalId);
                await client.DeletePoolAsync(pool);
            }

            await second.StopAsync();
            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
        }
    }

    private static TensorlakeClient Client(Uri api) => new(new TensorlakeClientOptions { ApiUrl = api, ApiKey = EngineFixture.ApiKey, MaxRetries = 0 });

    internal static async Task DeletePoolQuietlyAsync(TensorlakeClient client, string id)
    {
        try
        {
            await client.DeletePoolAsync(id);
        }
        catch (PoolNotFoundException)
        {
            // Already gone.
        }
    }

    /// <summary>A raw call to the engine's API, for the exact wire shapes: the status and the body's text.</summary>
    private static async Task<(int Status, string Body)> RawAsync(EngineFixture engine, HttpMethod method, string path, string? json = null)
    {
        using var http = new HttpClient();
        using var request = new HttpRequestMessage(method, new Uri(engine.Engine.ApiAddress, path));
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", EngineFixture.ApiKey);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        else if (method == HttpMethod.Post)
        {
            request.Content = new ByteArrayContent([]);
        }

        using var response = await http.SendAsync(request);
        return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }
}

/// <summary>Waits on a pool's containers as its GET reports them.</summary>
internal static class PoolWaits
{
    /// <summary>Waits until exactly <paramref name="count"/> warm containers are Idle (booted, unclaimed) and none is booting; answers them.</summary>
    public static async Task<IReadOnlyList<PoolContainerInfo>> IdleAsync(TensorlakeClient client, string pool, int count)
    {
        IReadOnlyList<PoolContainerInfo> idle = [];
        await Eventually.TrueAsync(async () =>
        {
            var warm = (await client.GetPoolAsync(pool)).Containers!.Where(c => c.IsWarm).ToList();
            idle = warm;
            return warm.Count == count && warm.All(c => c.State == PoolContainerState.Idle);
        }, $"{count} warm sandbox(es) in pool {pool}", TimeSpan.FromSeconds(60));
        return idle;
    }
}
