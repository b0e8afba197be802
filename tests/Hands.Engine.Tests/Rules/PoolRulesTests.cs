using Hands.Engine.Api;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Rules;

/// <summary>A pool's wire shape and which pool sandboxes suspend on idle, on their own: no engine, no containers.</summary>
[Trait("Tier", "Unit")]
public sealed class PoolRulesTests
{
    [Fact]
    public void A_pool_goes_out_as_the_sdk_reads_it_with_warm_containers_having_no_sandbox()
    {
        var pool = new PoolRecord { Id = "pabc", Namespace = "team", Image = "host", Cpus = 2, MemoryMb = 512, TimeoutSecs = 30, MaxContainers = 4, WarmContainers = 2, CreatedAt = 1, UpdatedAt = 2 };
        SandboxRecord Member(string id, bool warm, string status) => new() { Id = id, PoolId = pool.Id, Warm = warm, Status = status };
        var json = WireMapper.Pool(pool, [Member("s1", true, SandboxStatus.Running), Member("s2", true, SandboxStatus.Pending), Member("s3", false, SandboxStatus.Running), Member("s4", false, SandboxStatus.Suspended)]);

        // pool_id alone: serde refuses a struct that carries a field and its alias ("id") together.
        Assert.False(json.ContainsKey("id"));
        Assert.Equal(("pabc", "team", "host"), (json["pool_id"]!.GetValue<string>(), json["namespace"]!.GetValue<string>(), json["image"]!.GetValue<string>()));
        // No disk given: the engine's default is what the sandboxes get, and the SDK requires the field.
        Assert.Equal(10240, json["resources"]!["ephemeral_disk_mb"]!.GetValue<int>());
        Assert.True(json.ContainsKey("network_policy") && json["network_policy"] is null);
        var containers = json["containers"]!.AsArray().Select(c => (c!["id"]!.GetValue<string>(), c["state"]!.GetValue<string>(), c["sandbox_id"]?.GetValue<string>())).ToList();
        Assert.Equal([("s1", "Idle", null), ("s2", "Pending", null), ("s3", "Running", "s3"), ("s4", "Suspended", "s4")], containers);
        Assert.False(WireMapper.Pool(pool).ContainsKey("containers"));
    }

    [Theory]
    [InlineData(null, null, false, false)]
    [InlineData("named", null, false, true)]
    [InlineData(null, "pabc", false, true)]
    [InlineData(null, "pabc", true, false)]
    public void Named_and_claimed_pool_sandboxes_suspend_on_idle_ephemeral_and_warm_ones_do_not(string? name, string? pool, bool warm, bool suspendable) =>
        Assert.Equal(suspendable, new SandboxRecord { Name = name, PoolId = pool, Warm = warm }.IsSuspendable);
}
