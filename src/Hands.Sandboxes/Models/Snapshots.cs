using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>Snapshot kinds: <c>filesystem</c> (cold boot on restore) or <c>memory</c> (processes and memory too).</summary>
public static class SnapshotType
{
    public const string Filesystem = "filesystem";
    public const string Memory = "memory";
}

/// <summary>Snapshot states: <c>in_progress</c> → <c>local_ready</c> (restorable) → <c>completed</c>, or <c>failed</c>.</summary>
public static class SnapshotStatus
{
    public const string InProgress = "in_progress";
    public const string LocalReady = "local_ready";
    public const string Completed = "completed";
    public const string Failed = "failed";
}

/// <summary>Answer of <c>POST /sandboxes/{id}/snapshot</c>.</summary>
public sealed class CreateSnapshotResponse
{
    [JsonPropertyName("snapshot_id")] public string SnapshotId { get; set; } = "";
    [JsonPropertyName("status")] public string Status { get; set; } = SnapshotStatus.InProgress;
}

/// <summary>A snapshot (<c>GET /snapshots/{id}</c>).</summary>
public sealed class SnapshotInfo
{
    [JsonPropertyName("id")] public string? Id { get; set; }
    [JsonPropertyName("snapshot_id")] public string? SnapshotId { get; set; }
    [JsonPropertyName("namespace")] public string? Namespace { get; set; }
    [JsonPropertyName("sandbox_id")] public string? SandboxId { get; set; }
    [JsonPropertyName("base_image")] public string? BaseImage { get; set; }
    [JsonPropertyName("status")] public string Status { get; set; } = "";
    [JsonPropertyName("snapshot_type")] public string? SnapshotType { get; set; }
    [JsonPropertyName("error")] public string? Error { get; set; }
    [JsonPropertyName("snapshot_uri")] public string? SnapshotUri { get; set; }
    [JsonPropertyName("size_bytes")] public long? SizeBytes { get; set; }
    [JsonPropertyName("rootfs_disk_bytes")] public long? RootfsDiskBytes { get; set; }
    [JsonPropertyName("created_at")] public JsonElement? CreatedAtRaw { get; set; }

    [JsonIgnore] public string CanonicalId => Id ?? SnapshotId ?? "";
    [JsonIgnore] public bool IsRestorable => Status is Models.SnapshotStatus.LocalReady or Models.SnapshotStatus.Completed;
}

/// <summary><c>GET /snapshots</c>.</summary>
public sealed class SnapshotList
{
    [JsonPropertyName("snapshots")] public List<SnapshotInfo> Snapshots { get; set; } = [];
}
