using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>An environment (<c>type:"environment"</c>); a <c>self_hosted</c> one is a work queue.</summary>
public sealed class AgentEnvironment
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "environment";
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("description")] public string? Description { get; set; }
    [JsonPropertyName("config")] public JsonElement Config { get; set; }
    [JsonPropertyName("metadata")] public Dictionary<string, string> Metadata { get; set; } = [];
    [JsonPropertyName("scope")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Scope { get; set; }
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("updated_at")] public string UpdatedAt { get; set; } = "";
    [JsonPropertyName("archived_at")] public string? ArchivedAt { get; set; }

    /// <summary>True when <c>config.type</c> is <c>self_hosted</c>.</summary>
    [JsonIgnore]
    public bool IsSelfHosted =>
        Config.ValueKind == JsonValueKind.Object
        && Config.TryGetProperty("type", out var t)
        && t.ValueKind == JsonValueKind.String
        && t.GetString() == "self_hosted";
}

/// <summary>Body of <c>POST /v1/environments</c>.</summary>
public sealed class CreateEnvironmentRequest
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("config")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Config { get; set; }
    [JsonPropertyName("description")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Description { get; set; }
    [JsonPropertyName("metadata")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Metadata { get; set; }
}

/// <summary>
/// A freshly minted environment key. Anthropic makes these only in its Console; the local control plane mints them
/// through the extension endpoint <c>POST /v1/environments/{id}/keys</c>. The key is shown once and stored hashed.
/// </summary>
public sealed class EnvironmentKey
{
    [JsonPropertyName("type")] public string Type { get; set; } = "environment_key";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("environment_id")] public string EnvironmentId { get; set; } = "";
    [JsonPropertyName("key")] public string Key { get; set; } = "";
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
}
