using System.Text.Json.Serialization;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Storage;

/// <summary>Where a suspended sandbox is: frozen in RAM (tier 1, runc pause) or hibernated to disk (tier 2, CRIU dump).</summary>
public static class SuspendTier
{
    public const string Frozen = "frozen";
    public const string Hibernated = "hibernated";
}

/// <summary>Everything the engine keeps about one sandbox; what it needs to re-attach, resume or clean up after a restart.</summary>
public sealed class SandboxRecord
{
    public string Id { get; set; } = "";
    public string? Name { get; set; }
    public string Namespace { get; set; } = "default";
    public string Status { get; set; } = SandboxStatus.Pending;
    public string Image { get; set; } = "";
    /// <summary>Read-only layers, topmost first; the image's base root is last.</summary>
    public List<string> Layers { get; set; } = [];
    public double Cpus { get; set; } = 1.0;
    public int MemoryMb { get; set; } = 1024;
    public int? DiskMb { get; set; }
    public int TimeoutSecs { get; set; } = 600;
    /// <summary>For a sandbox restored from a snapshot: the sandbox that snapshot was taken of (its fork parent).</summary>
    public string? ParentId { get; set; }
    /// <summary>Set only when a fork key scoped to that sandbox created this one: what that key may reach and delete.</summary>
    public string? ForkedBy { get; set; }
    public List<string>? Entrypoint { get; set; }
    public NetworkPolicy? Network { get; set; }
    public List<int> ExposedPorts { get; set; } = [];
    public bool AllowUnauthenticatedAccess { get; set; }
    /// <summary>The /30 this sandbox owns in 10.200.0.0/16 (0 = none yet).</summary>
    public int Slot { get; set; }
    public Dictionary<string, string> ImageEnv { get; set; } = [];
    public string? SuspendTier { get; set; }
    public long? SuspendedAt { get; set; }
    public string? RestoredFromSnapshot { get; set; }
    public long CreatedAt { get; set; }
    public long? TerminatedAt { get; set; }
    public string? TerminationReason { get; set; }
    public string? ErrorDetails { get; set; }
    /// <summary>
    /// Engine extension: per forwarded host port (as a string key), the only HTTP requests (<c>METHOD /path</c>) the
    /// sandbox may send there; null or a missing port pipes bytes unfiltered (<see cref="Network.HttpRouteGate"/>).
    /// </summary>
    public Dictionary<string, List<string>>? HostPortRoutes { get; set; }

    /// <summary>The pool this sandbox was booted for (warm) or claimed from; it stays after the claim, for the pool's accounting.</summary>
    public string? PoolId { get; set; }

    /// <summary>
    /// True while the sandbox waits in its pool, unclaimed: not on the sandbox API (no list, get or ingress), not subject
    /// to its idle timeout. A claim sets it false for good; a claimed sandbox never returns to its pool.
    /// </summary>
    public bool Warm { get; set; }

    /// <summary>The pool's <see cref="PoolRecord.Generation"/> this sandbox booted with; a warm one of an older generation is recycled.</summary>
    public int? PoolGeneration { get; set; }

    /// <summary>When it was claimed from its pool (ms since the epoch); its idle timeout counts from here.</summary>
    public long? ClaimedAt { get; set; }

    /// <summary>The only credential the sandbox's daemon answers (<see cref="Sandboxes.SandboxDaemonClient"/>); host-side only.</summary>
    public string DaemonToken { get; set; } = "";

    [JsonIgnore] public bool IsNamed => !string.IsNullOrEmpty(Name);
    [JsonIgnore] public bool IsAlive => Status != SandboxStatus.Terminated;

    /// <summary>
    /// Whether idle suspends it (and <c>POST /suspend</c> may) rather than terminating it: a named sandbox, or one claimed
    /// from a pool (Tensorlake's SDK tests expect a claimed sandbox to suspend at its pool's timeout, never to end).
    /// </summary>
    [JsonIgnore] public bool IsSuspendable => IsNamed || (PoolId is not null && !Warm);
}

/// <summary>
/// A warm pool (Tensorlake's <c>/sandbox-pools</c>): the configuration its sandboxes boot with and how many to keep
/// booted. Its sandboxes are ordinary <see cref="SandboxRecord"/>s carrying its id.
/// </summary>
public sealed class PoolRecord
{
    public string Id { get; set; } = "";
    public string Namespace { get; set; } = "default";
    /// <summary>The image as the request named it (the engine's default image's name when it named none).</summary>
    public string Image { get; set; } = "";
    public double Cpus { get; set; } = 1.0;
    public int MemoryMb { get; set; } = 1024;
    /// <summary>Disk of each sandbox (<c>ephemeral_disk_mb</c>); null: the engine's default.</summary>
    public int? DiskMb { get; set; }
    /// <summary>Idle timeout a claimed sandbox gets, counted from its claim; 0: none. Warm sandboxes have none.</summary>
    public int TimeoutSecs { get; set; }
    public List<string>? Entrypoint { get; set; }
    /// <summary>Most sandboxes of this pool alive at once, warm and claimed together; null: no limit but the engine's.</summary>
    public int? MaxContainers { get; set; }
    /// <summary>How many booted, unclaimed sandboxes to keep ready; null: none.</summary>
    public int? WarmContainers { get; set; }
    public NetworkPolicy? Network { get; set; }
    /// <summary>Bumped whenever what a sandbox boots with changes (image, resources, entrypoint, network): warm ones of an older generation are recycled.</summary>
    public int Generation { get; set; } = 1;
    public long CreatedAt { get; set; }
    public long UpdatedAt { get; set; }
}

/// <summary>A snapshot: a frozen upper layer (both types) plus a CRIU image (memory).</summary>
public sealed class SnapshotRecord
{
    public string Id { get; set; } = "";
    public string Namespace { get; set; } = "default";
    public string SandboxId { get; set; } = "";
    public string Type { get; set; } = SnapshotType.Filesystem;
    public string Status { get; set; } = SnapshotStatus.InProgress;
    public string? Error { get; set; }
    public string Image { get; set; } = "";
    /// <summary>The layers a restore stacks, topmost first: this snapshot's own layer, then the source's.</summary>
    public List<string> Layers { get; set; } = [];
    public string? CheckpointDirectory { get; set; }
    public double Cpus { get; set; } = 1.0;
    public int MemoryMb { get; set; } = 1024;
    public int? DiskMb { get; set; }
    public List<string>? Entrypoint { get; set; }
    public Dictionary<string, string> ImageEnv { get; set; } = [];
    public List<int> ExposedPorts { get; set; } = [];
    public bool AllowUnauthenticatedAccess { get; set; }
    public long SizeBytes { get; set; }
    public long CreatedAt { get; set; }
    /// <summary>A memory snapshot's daemon holds its sandbox's token in memory; its restored copies answer that one.</summary>
    public string? DaemonToken { get; set; }
}

/// <summary>A registered image (a Tensorlake "sandbox template"): a name for a filesystem snapshot plus its ENV and WORKDIR.</summary>
public sealed class ImageRecord
{
    public string Name { get; set; } = "";
    public string SnapshotId { get; set; } = "";
    public string? Dockerfile { get; set; }
    public long CreatedAt { get; set; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(SandboxRecord))]
[JsonSerializable(typeof(SnapshotRecord))]
[JsonSerializable(typeof(ImageRecord))]
[JsonSerializable(typeof(PoolRecord))]
internal sealed partial class EngineJsonContext : JsonSerializerContext;
