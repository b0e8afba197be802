using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>
/// Body of <c>POST /sandbox-pools</c> (create) and <c>PUT /sandbox-pools/{id}</c> (full replace), as Tensorlake's SDK
/// sends it (<c>SandboxPoolRequest</c>): <c>timeout_secs</c> always (0 = none), everything else only when set.
/// </summary>
public sealed class SandboxPoolRequest
{
    /// <summary>Image every sandbox of the pool boots; null: the provider's default.</summary>
    [JsonPropertyName("image")] public string? Image { get; set; }
    [JsonPropertyName("resources")] public SandboxPoolResources? Resources { get; set; } = new();
    /// <summary>Idle timeout a claimed sandbox gets, counted from its claim; 0: none. Warm sandboxes have none.</summary>
    [JsonPropertyName("timeout_secs")] public int TimeoutSecs { get; set; }
    [JsonPropertyName("entrypoint")] public List<string>? Entrypoint { get; set; }
    /// <summary>Most sandboxes of the pool alive at once, warm and claimed together; null: no limit.</summary>
    [JsonPropertyName("max_containers")] public int? MaxContainers { get; set; }
    /// <summary>How many booted, unclaimed sandboxes the pool keeps ready.</summary>
    [JsonPropertyName("warm_containers")] public int? WarmContainers { get; set; }
    /// <summary>Egress policy of every sandbox of the pool. On an update, null keeps the current one unless <see cref="ClearNetwork"/>.</summary>
    [JsonPropertyName("network")] public NetworkPolicy? Network { get; set; }
    /// <summary>Update only: sends <c>"network": null</c>, removing the policy (unrestricted egress).</summary>
    [JsonIgnore] public bool ClearNetwork { get; set; }
}

/// <summary>A pool's per-sandbox resources (the SDK's <c>ContainerResourcesInfo</c>); <c>disk_mb</c> is read as an alias of <c>ephemeral_disk_mb</c>.</summary>
public sealed class SandboxPoolResources
{
    [JsonPropertyName("cpus")] public double? Cpus { get; set; } = 1.0;
    [JsonPropertyName("memory_mb")] public int? MemoryMb { get; set; } = 1024;
    [JsonPropertyName("ephemeral_disk_mb")] public int? EphemeralDiskMb { get; set; }
    [JsonPropertyName("disk_mb")] public int? DiskMb { get; set; }

    /// <summary>The disk size whichever spelling carried it; 0 (the SDK's "unset") reads as null.</summary>
    [JsonIgnore] public int? Disk => (EphemeralDiskMb ?? DiskMb) is > 0 and var disk ? disk : null;
}

/// <summary>Answer of <c>POST /sandbox-pools</c>.</summary>
public sealed class CreateSandboxPoolResponse
{
    [JsonPropertyName("pool_id")] public string PoolId { get; set; } = "";
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
}

/// <summary>
/// A pool as <c>GET /sandbox-pools[/{id}]</c> and <c>PUT</c> answer it (the SDK's <c>SandboxPoolInfo</c>). Only the
/// single GET lists <see cref="Containers"/>. The id is read from <c>pool_id</c> or <c>id</c>, the policy from
/// <c>network_policy</c> or <c>network</c>.
/// </summary>
public sealed class SandboxPoolInfo
{
    [JsonPropertyName("pool_id")] public string? PoolId { get; set; }
    [JsonPropertyName("id")] public string? Id { get; set; }
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
    [JsonPropertyName("image")] public string? Image { get; set; }
    [JsonPropertyName("resources")] public SandboxPoolResources? Resources { get; set; }
    [JsonPropertyName("timeout_secs")] public int TimeoutSecs { get; set; }
    [JsonPropertyName("entrypoint")] public List<string>? Entrypoint { get; set; }
    [JsonPropertyName("max_containers")] public int? MaxContainers { get; set; }
    [JsonPropertyName("warm_containers")] public int? WarmContainers { get; set; }
    [JsonPropertyName("network_policy")] public NetworkPolicy? NetworkPolicy { get; set; }
    [JsonPropertyName("network")] public NetworkPolicy? NetworkAlias { get; set; }
    [JsonPropertyName("containers")] public List<PoolContainerInfo>? Containers { get; set; }
    [JsonPropertyName("created_at")] public JsonElement? CreatedAtRaw { get; set; }
    [JsonPropertyName("updated_at")] public JsonElement? UpdatedAtRaw { get; set; }

    [JsonIgnore] public string CanonicalId => PoolId ?? Id ?? "";
    [JsonIgnore] public NetworkPolicy? EffectiveNetwork => NetworkPolicy ?? NetworkAlias;
    [JsonIgnore] public DateTimeOffset? CreatedAt => Timestamps.Parse(CreatedAtRaw);
    [JsonIgnore] public DateTimeOffset? UpdatedAt => Timestamps.Parse(UpdatedAtRaw);
}

/// <summary>One container of a pool: <see cref="SandboxId"/> is null while it is warm (unclaimed).</summary>
public sealed class PoolContainerInfo
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    /// <summary>See <see cref="PoolContainerState"/>; other providers may send other words.</summary>
    [JsonPropertyName("state")] public string State { get; set; } = "";
    [JsonPropertyName("sandbox_id")] public string? SandboxId { get; set; }
    [JsonPropertyName("executor_id")] public string? ExecutorId { get; set; }

    [JsonIgnore] public bool IsWarm => SandboxId is null;
}

/// <summary>Container states as the SDK's <c>ContainerState</c> spells them (<c>Idle</c>, <c>Running</c>), plus the local engine's others.</summary>
public static class PoolContainerState
{
    /// <summary>Warm: booted, waiting for a claim.</summary>
    public const string Idle = "Idle";

    /// <summary>Claimed and running.</summary>
    public const string Running = "Running";

    /// <summary>Booting.</summary>
    public const string Pending = "Pending";

    /// <summary>Claimed and suspended.</summary>
    public const string Suspended = "Suspended";
}

/// <summary>Answer of <c>GET /sandbox-pools</c>.</summary>
public sealed class SandboxPoolList
{
    [JsonPropertyName("pools")] public List<SandboxPoolInfo> Pools { get; set; } = [];
}
