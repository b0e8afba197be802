using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>Sandbox states on the wire (lowercase).</summary>
public static class SandboxStatus
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Snapshotting = "snapshotting";
    public const string Suspending = "suspending";
    public const string Suspended = "suspended";
    public const string Terminated = "terminated";
    /// <summary>Only on create/claim answers: the blocking wait ran out (HTTP 504 with a JSON body).</summary>
    public const string Timeout = "timeout";
}

/// <summary><c>pending_reason</c> values (Tensorlake's Go client lists them).</summary>
public static class PendingReason
{
    /// <summary>A claim waits for a place in a pool at its <c>max_containers</c> (Tensorlake's server queues it).</summary>
    public const string PoolAtCapacity = "pool_at_capacity";
}

/// <summary>Body of <c>POST /sandboxes</c> (create, or restore when <see cref="SnapshotId"/> is set). Unset fields are not sent.</summary>
public sealed class CreateSandboxRequest
{
    [JsonPropertyName("image")] public string? Image { get; set; }
    [JsonPropertyName("resources")] public SandboxResources? Resources { get; set; } = new();
    [JsonPropertyName("timeout_secs")] public int? TimeoutSecs { get; set; }
    [JsonPropertyName("entrypoint")] public List<string>? Entrypoint { get; set; }
    [JsonPropertyName("network")] public NetworkPolicy? Network { get; set; }
    [JsonPropertyName("snapshot_id")] public string? SnapshotId { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("secret_names")] public List<string>? SecretNames { get; set; }
    [JsonPropertyName("allow_unauthenticated_access")] public bool? AllowUnauthenticatedAccess { get; set; }
    [JsonPropertyName("exposed_ports")] public List<int>? ExposedPorts { get; set; }
    [JsonPropertyName("template_id")] public string? TemplateId { get; set; }
}

/// <summary>CPU, memory and disk of a sandbox. <c>disk_mb</c> and the older <c>ephemeral_disk_mb</c> are both read.</summary>
public sealed class SandboxResources
{
    [JsonPropertyName("cpus")] public double? Cpus { get; set; } = 1.0;
    [JsonPropertyName("memory_mb")] public int? MemoryMb { get; set; } = 1024;
    [JsonPropertyName("disk_mb")] public int? DiskMb { get; set; }
    [JsonPropertyName("ephemeral_disk_mb")] public int? EphemeralDiskMb { get; set; }

    /// <summary>The disk size whichever spelling the server used.</summary>
    [JsonIgnore] public int? Disk => DiskMb ?? EphemeralDiskMb;
}

/// <summary>Egress policy: <c>deny_out</c> beats <c>allow_out</c>; a non-empty <c>allow_out</c> is default-deny.</summary>
public sealed class NetworkPolicy
{
    [JsonPropertyName("allow_internet_access")] public bool AllowInternetAccess { get; set; } = true;
    [JsonPropertyName("allow_out")] public List<string> AllowOut { get; set; } = [];
    [JsonPropertyName("deny_out")] public List<string> DenyOut { get; set; } = [];
}

/// <summary>Answer of create (and of claim, copy): the new sandbox's id, state and where to reach it.</summary>
public sealed class CreateSandboxResponse
{
    [JsonPropertyName("sandbox_id")] public string? SandboxId { get; set; }
    [JsonPropertyName("id")] public string? Id { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = SandboxStatus.Pending;
    [JsonPropertyName("reason")] public string? Reason { get; set; }
    [JsonPropertyName("pending_reason")] public string? PendingReason { get; set; }
    [JsonPropertyName("routing_hint")] public string? RoutingHint { get; set; }
    [JsonPropertyName("ingress_endpoint")] public string? IngressEndpoint { get; set; }
    [JsonPropertyName("sandbox_url")] public string? SandboxUrl { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("termination_reason")] public string? TerminationReason { get; set; }
    [JsonPropertyName("error_details")] public JsonElement? ErrorDetails { get; set; }
    /// <summary>On a pool claim's answer: whether the claim-time configuration (file-system mounts) was applied.</summary>
    [JsonPropertyName("claim_configuration_applied")] public bool? ClaimConfigurationApplied { get; set; }

    /// <summary>The sandbox id whichever field carried it.</summary>
    [JsonIgnore] public string CanonicalId => SandboxId ?? Id ?? "";
}

/// <summary>A sandbox as <c>GET /sandboxes/{id}</c> returns it. Drifting fields are read in both spellings.</summary>
public sealed class SandboxInfo
{
    [JsonPropertyName("id")] public string? Id { get; set; }
    [JsonPropertyName("sandbox_id")] public string? SandboxId { get; set; }
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = "";
    [JsonPropertyName("image")] public string? Image { get; set; }
    /// <summary>The isolation the sandbox runs under (Tensorlake: <c>firecracker</c>, <c>gvisor</c>; the local engine: <c>runc</c>, <c>runc-userns</c>).</summary>
    [JsonPropertyName("runtime")] public string? Runtime { get; set; }
    [JsonPropertyName("resources")] public SandboxResources? Resources { get; set; }
    [JsonPropertyName("timeout_secs")] public int? TimeoutSecs { get; set; }
    [JsonPropertyName("entrypoint")] public List<string>? Entrypoint { get; set; }
    [JsonPropertyName("network")] public NetworkPolicy? Network { get; set; }
    [JsonPropertyName("network_policy")] public NetworkPolicy? NetworkPolicyAlias { get; set; }
    [JsonPropertyName("pool_id")] public string? PoolId { get; set; }
    [JsonPropertyName("outcome")] public JsonElement? Outcome { get; set; }
    [JsonPropertyName("termination_reason")] public string? TerminationReason { get; set; }
    [JsonPropertyName("error_details")] public JsonElement? ErrorDetails { get; set; }
    [JsonPropertyName("created_at")] public JsonElement? CreatedAtRaw { get; set; }
    [JsonPropertyName("terminated_at")] public JsonElement? TerminatedAtRaw { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("routing_hint")] public string? RoutingHint { get; set; }
    [JsonPropertyName("allow_unauthenticated_access")] public bool AllowUnauthenticatedAccess { get; set; }
    [JsonPropertyName("exposed_ports")] public List<int> ExposedPorts { get; set; } = [];
    [JsonPropertyName("ingress_endpoint")] public string? IngressEndpoint { get; set; }
    [JsonPropertyName("sandbox_url")] public string? SandboxUrl { get; set; }
    [JsonPropertyName("pending_reason")] public string? PendingReason { get; set; }
    [JsonPropertyName("template_id")] public string? TemplateId { get; set; }
    /// <summary>Hands engine extension: <c>frozen</c> (RAM) or <c>hibernated</c> (disk) while suspended.</summary>
    [JsonPropertyName("suspend_tier")] public string? SuspendTier { get; set; }
    /// <summary>Hands engine extension: the snapshot this sandbox was restored from.</summary>
    [JsonPropertyName("restored_from_snapshot")] public string? RestoredFromSnapshot { get; set; }

    [JsonIgnore] public string CanonicalId => Id ?? SandboxId ?? "";
    [JsonIgnore] public NetworkPolicy? EffectiveNetwork => Network ?? NetworkPolicyAlias;
    [JsonIgnore] public DateTimeOffset? CreatedAt => Timestamps.Parse(CreatedAtRaw);
    [JsonIgnore] public DateTimeOffset? TerminatedAt => Timestamps.Parse(TerminatedAtRaw);
}

/// <summary>One page of <c>GET /sandboxes</c>.</summary>
public sealed class SandboxPage
{
    [JsonPropertyName("sandboxes")] public List<SandboxInfo>? Sandboxes { get; set; }
    /// <summary>Some servers answer <c>items</c> instead of <c>sandboxes</c>.</summary>
    [JsonPropertyName("items")] public List<SandboxInfo>? Items { get; set; }
    [JsonPropertyName("next_cursor")] public string? NextCursor { get; set; }
    [JsonPropertyName("prev_cursor")] public string? PrevCursor { get; set; }

    [JsonIgnore] public List<SandboxInfo> Data => Sandboxes ?? Items ?? [];
}

/// <summary>Body of <c>PATCH /sandboxes/{id}</c>. <see cref="ClearNetwork"/> sends <c>"network": null</c> (unrestricted egress).</summary>
public sealed class UpdateSandboxRequest
{
    public string? Name { get; set; }
    public bool? AllowUnauthenticatedAccess { get; set; }
    /// <summary>Replaces the allowlist; an empty list unexposes every user port.</summary>
    public List<int>? ExposedPorts { get; set; }
    public NetworkPolicy? Network { get; set; }
    public bool ClearNetwork { get; set; }
    /// <summary>
    /// Local engine extension: per forwarded host port, the only HTTP requests (<c>"METHOD /path"</c>) the sandbox may
    /// send there; replaces the whole map. Tensorlake's cloud has no host forwards and ignores it.
    /// </summary>
    public Dictionary<int, List<string>>? HostPortRoutes { get; set; }
}

/// <summary>Epoch timestamps in seconds, milliseconds or microseconds, told apart by magnitude (as the SDK does).</summary>
public static class Timestamps
{
    public static DateTimeOffset? Parse(JsonElement? raw)
    {
        if (raw is not { ValueKind: JsonValueKind.Number } value || !value.TryGetDouble(out var n))
        {
            return raw is { ValueKind: JsonValueKind.String } s && DateTimeOffset.TryParse(s.GetString(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed) ? parsed : null;
        }

        return n switch
        {
            > 1e14 => DateTimeOffset.FromUnixTimeMilliseconds((long)(n / 1000)),
            > 1e11 => DateTimeOffset.FromUnixTimeMilliseconds((long)n),
            _ => DateTimeOffset.FromUnixTimeMilliseconds((long)(n * 1000)),
        };
    }
}
