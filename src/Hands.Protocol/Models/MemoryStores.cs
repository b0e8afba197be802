using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A memory store (<c>type:"memory_store"</c>, id <c>memstore_...</c>): a folder of text memories a session mounts.</summary>
public sealed class MemoryStore
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "memory_store";
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("description")] public string Description { get; set; } = "";
    [JsonPropertyName("metadata")] public Dictionary<string, string> Metadata { get; set; } = [];
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("updated_at")] public string UpdatedAt { get; set; } = "";
    [JsonPropertyName("archived_at")] public string? ArchivedAt { get; set; }
}

/// <summary>Body of <c>POST /v1/memory_stores</c> and of its update (null fields are left as they are).</summary>
public sealed class MemoryStoreRequest
{
    [JsonPropertyName("name")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Name { get; set; }

    [JsonPropertyName("description")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Description { get; set; }

    [JsonPropertyName("metadata")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string?>? Metadata { get; set; }
}

/// <summary>
/// One item of a memory listing: a memory (<c>type:"memory"</c>; <see cref="Content"/> null in the <c>basic</c> view), or,
/// when the listing has a <c>depth</c>, a <c>memory_prefix</c> roll-up that carries only <see cref="Path"/> (ending in <c>/</c>).
/// </summary>
public sealed class Memory
{
    [JsonPropertyName("type")] public string Type { get; set; } = "memory";
    [JsonPropertyName("path")] public string Path { get; set; } = "";

    [JsonPropertyName("id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Id { get; set; }

    [JsonPropertyName("memory_store_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MemoryStoreId { get; set; }

    /// <summary>Lowercase hex SHA-256 of the UTF-8 content bytes; set in every view.</summary>
    [JsonPropertyName("content_sha256")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ContentSha256 { get; set; }

    [JsonPropertyName("content_size_bytes")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? ContentSizeBytes { get; set; }

    [JsonPropertyName("memory_version_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? MemoryVersionId { get; set; }

    [JsonPropertyName("created_at")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? CreatedAt { get; set; }

    [JsonPropertyName("updated_at")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? UpdatedAt { get; set; }

    /// <summary>The text; null in the <c>basic</c> view (written as <c>null</c> on a memory, left out of a prefix).</summary>
    [JsonPropertyName("content")]
    public string? Content { get; set; }

    [JsonIgnore] public bool IsPrefix => Type == "memory_prefix";
}

/// <summary>Body of <c>POST /v1/memory_stores/{id}/memories</c> (create) and <c>.../memories/{mem}</c> (update).</summary>
public sealed class MemoryWriteRequest
{
    [JsonPropertyName("path")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Path { get; set; }

    [JsonPropertyName("content")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Content { get; set; }

    [JsonPropertyName("precondition")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MemoryPrecondition? Precondition { get; set; }
}

/// <summary>An update's condition: <c>{"type":"content_sha256","content_sha256":"..."}</c>.</summary>
public sealed class MemoryPrecondition
{
    [JsonPropertyName("type")] public string Type { get; set; } = "content_sha256";
    [JsonPropertyName("content_sha256")] public string? ContentSha256 { get; set; }
}

/// <summary>One recorded change of a memory (<c>type:"memory_version"</c>, id <c>memver_...</c>).</summary>
public sealed class MemoryVersion
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "memory_version";
    [JsonPropertyName("memory_id")] public string MemoryId { get; set; } = "";
    [JsonPropertyName("memory_store_id")] public string MemoryStoreId { get; set; } = "";
    /// <summary><c>created</c>, <c>modified</c> or <c>deleted</c>.</summary>
    [JsonPropertyName("operation")] public string Operation { get; set; } = "";
    [JsonPropertyName("path")] public string? Path { get; set; }
    [JsonPropertyName("content")] public string? Content { get; set; }
    [JsonPropertyName("content_sha256")] public string? ContentSha256 { get; set; }
    [JsonPropertyName("content_size_bytes")] public long? ContentSizeBytes { get; set; }
    [JsonPropertyName("created_by")] public MemoryActor? CreatedBy { get; set; }
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("redacted_at")] public string? RedactedAt { get; set; }

    [JsonPropertyName("redacted_by")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public MemoryActor? RedactedBy { get; set; }
}

/// <summary>Who made a change: <c>session_actor</c> (<see cref="SessionId"/>) or <c>api_actor</c> (<see cref="ApiKeyId"/>).</summary>
public sealed class MemoryActor
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";

    [JsonPropertyName("session_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? SessionId { get; set; }

    [JsonPropertyName("api_key_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ApiKeyId { get; set; }
}

/// <summary>Well-known memory values.</summary>
public static class MemoryValues
{
    /// <summary>The beta header of the memory endpoints (they also accept the managed-agents beta).</summary>
    public const string Beta = "agent-memory-2026-07-22";
    public const string ViewBasic = "basic";
    public const string ViewFull = "full";
    /// <summary>409 of a failed <c>content_sha256</c> precondition.</summary>
    public const string PreconditionFailedError = "memory_precondition_failed_error";
    /// <summary>409 of a create or rename onto a used or overlapping path.</summary>
    public const string PathConflictError = "memory_path_conflict_error";
    /// <summary>Most memories a store holds.</summary>
    public const int MaxMemoriesPerStore = 2000;
    /// <summary>Largest content, in UTF-8 bytes.</summary>
    public const int MaxContentBytes = 102_400;
    /// <summary>Longest path, in UTF-8 bytes.</summary>
    public const int MaxPathBytes = 1024;
    /// <summary>Page size caps: basic and full views.</summary>
    public const int MaxBasicPage = 100;
    public const int MaxFullPage = 20;
}
