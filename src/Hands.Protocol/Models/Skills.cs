using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A skill (<c>type:"skill"</c>).</summary>
public sealed class Skill
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "skill";
    [JsonPropertyName("display_title")] public string? DisplayTitle { get; set; }
    [JsonPropertyName("latest_version")] public string? LatestVersion { get; set; }
    [JsonPropertyName("source")] public string Source { get; set; } = "custom";
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("updated_at")] public string UpdatedAt { get; set; } = "";
}

/// <summary>One version of a skill (<c>type:"skill_version"</c>); its content is an archive.</summary>
public sealed class SkillVersion
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "skill_version";
    [JsonPropertyName("skill_id")] public string SkillId { get; set; } = "";
    [JsonPropertyName("version")] public string Version { get; set; } = "";
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("directory")] public string Directory { get; set; } = "";
    [JsonPropertyName("description")] public string Description { get; set; } = "";
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
}
