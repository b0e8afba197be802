using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>An agent (<c>type:"agent"</c>): model, system prompt, tools, skills. Every update makes a new version.</summary>
public sealed class Agent
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "agent";
    [JsonPropertyName("version")] public int Version { get; set; }
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("description")] public string? Description { get; set; }
    /// <summary>Either a model id string or an object with <c>id</c>; kept as the caller sent it.</summary>
    [JsonPropertyName("model")] public JsonElement Model { get; set; }
    [JsonPropertyName("system")] public string? System { get; set; }
    [JsonPropertyName("tools")] public List<JsonElement> Tools { get; set; } = [];
    [JsonPropertyName("mcp_servers")] public List<JsonElement> McpServers { get; set; } = [];
    [JsonPropertyName("skills")] public List<AgentSkill> Skills { get; set; } = [];
    [JsonPropertyName("metadata")] public Dictionary<string, string> Metadata { get; set; } = [];
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("updated_at")] public string UpdatedAt { get; set; } = "";
    [JsonPropertyName("archived_at")] public string? ArchivedAt { get; set; }

    /// <summary>The model id whether <see cref="Model"/> is a string or an object.</summary>
    [JsonIgnore]
    public string ModelId => Model.ValueKind switch
    {
        JsonValueKind.String => Model.GetString() ?? "",
        JsonValueKind.Object when Model.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String => id.GetString() ?? "",
        _ => "",
    };
}

/// <summary>A skill attached to an agent: <c>{type, skill_id, version}</c>.</summary>
public sealed class AgentSkill
{
    [JsonPropertyName("type")] public string Type { get; set; } = "custom";
    [JsonPropertyName("skill_id")] public string SkillId { get; set; } = "";
    [JsonPropertyName("version")] public string? Version { get; set; }
}

/// <summary>Body of <c>POST /v1/agents</c> and (with <see cref="Version"/>) of the update call.</summary>
public sealed class CreateAgentRequest
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("model")] public JsonElement Model { get; set; }
    [JsonPropertyName("system")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? System { get; set; }
    [JsonPropertyName("description")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Description { get; set; }
    [JsonPropertyName("tools")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<JsonElement>? Tools { get; set; }
    [JsonPropertyName("skills")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<AgentSkill>? Skills { get; set; }
    [JsonPropertyName("metadata")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<string, string>? Metadata { get; set; }
    /// <summary>On update: the version being replaced (optimistic concurrency).</summary>
    [JsonPropertyName("version")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Version { get; set; }
}
