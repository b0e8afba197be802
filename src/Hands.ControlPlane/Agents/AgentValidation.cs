using System.Text.Json;
using System.Text.RegularExpressions;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Scripted;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane;

/// <summary>Validates agent definitions (create, update, session overrides) with the hosted service's rules.</summary>
public static partial class AgentValidation
{
    private static readonly string[] ToolsetToolNames = ["bash", "read", "write", "edit", "glob", "grep", "web_fetch", "web_search"];

    /// <summary>The validated parts of an agent body; null means "not given".</summary>
    public sealed record Validated(
        string? Name, JsonElement? Model, string? System, string? Description, List<JsonElement>? Tools,
        List<JsonElement>? McpServers, List<AgentSkill>? Skills, Dictionary<string, string?>? Metadata);

    public static Validated Validate(JsonBody body, bool requireNameAndModel)
    {
        var name = requireNameAndModel ? body.RequireString("name", 1, 256) : body.OptionalString("name", 1, 256);
        JsonElement? model = null;
        if (body.Has("model") && !body.IsNull("model"))
        {
            var m = body.Element.GetProperty("model");
            if (m.ValueKind == JsonValueKind.String)
            {
                if (m.GetString()!.Length == 0)
                {
                    throw ApiException.Invalid("model: String should have at least 1 character");
                }
            }
            else if (m.ValueKind == JsonValueKind.Object)
            {
                var mb = body.RequireObject("model");
                mb.OnlyFields("id", "effort", "inference_geo", "speed");
                mb.RequireString("id");
            }
            else
            {
                throw ApiException.Invalid($"model: Input should be a model id string or an object with 'id', not {JsonBody.Describe(m.ValueKind)}");
            }

            model = m.Clone();
        }
        else if (requireNameAndModel)
        {
            throw ApiException.Invalid("model: Field required");
        }

        var system = body.OptionalString("system", maxLength: 100_000);
        var description = body.OptionalString("description", maxLength: 2048);
        var tools = body.OptionalArray("tools", maxItems: 128);
        if (tools is not null)
        {
            ValidateTools(body, tools);
        }

        var mcp = body.OptionalArray("mcp_servers", maxItems: 20);
        List<AgentSkill>? skills = null;
        var rawSkills = body.OptionalArray("skills", maxItems: 64);
        if (rawSkills is not null)
        {
            skills = [];
            for (var i = 0; i < rawSkills.Count; i++)
            {
                var s = body.Item("skills", i, rawSkills[i]);
                s.OnlyFields("type", "skill_id", "version");
                var type = s.RequireString("type");
                if (type is not ("custom" or "anthropic"))
                {
                    throw ApiException.Invalid($"{s.Path("type")}: Input should be 'custom' or 'anthropic'");
                }

                skills.Add(new AgentSkill { Type = type, SkillId = s.RequireString("skill_id"), Version = s.OptionalString("version", 1) });
            }
        }

        var metadata = body.OptionalMetadata("metadata", allowNullValues: !requireNameAndModel);
        return new Validated(name, model, system, description, tools, mcp, skills, metadata);
    }

    private static void ValidateTools(JsonBody body, List<JsonElement> tools)
    {
        var customNames = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tools.Count; i++)
        {
            var tool = body.Item("tools", i, tools[i]);
            var type = tool.RequireString("type");
            switch (type)
            {
                case ToolPermissions.Toolset:
                {
                    tool.OnlyFields("type", "default_config", "configs");
                    if (tool.OptionalObject("default_config") is { } defaults)
                    {
                        ValidateToolConfig(defaults, named: false);
                    }

                    var configs = tool.OptionalArray("configs") ?? [];
                    for (var c = 0; c < configs.Count; c++)
                    {
                        ValidateToolConfig(tool.Item("configs", c, configs[c]), named: true);
                    }

                    break;
                }

                case "custom":
                {
                    tool.OnlyFields("type", "name", "description", "input_schema");
                    var name = tool.RequireString("name", 1, 128);
                    if (!ToolName().IsMatch(name))
                    {
                        throw ApiException.Invalid($"{tool.Path("name")}: must contain only letters, digits, '_' and '-'");
                    }

                    if (Array.IndexOf(ToolsetToolNames, name) >= 0 || name.StartsWith("mcp__", StringComparison.Ordinal))
                    {
                        throw ApiException.Invalid($"{tool.Path("name")}: '{name}' collides with a built-in tool name or the mcp__ prefix");
                    }

                    if (!customNames.Add(name))
                    {
                        throw ApiException.Invalid($"{tool.Path("name")}: duplicate custom tool name '{name}'");
                    }

                    tool.RequireString("description");
                    var schema = tool.RequireObject("input_schema");
                    if (schema.OptionalString("type") is not "object")
                    {
                        throw ApiException.Invalid($"{schema.Path("type")}: the input schema's type must be 'object'");
                    }

                    foreach (var forbidden in new[] { "oneOf", "anyOf", "allOf" })
                    {
                        if (schema.Has(forbidden))
                        {
                            throw ApiException.Invalid($"{schema.Path(forbidden)}: not allowed at the top level of an input schema");
                        }
                    }

                    if (schema.Element.GetRawText().Contains("\"$ref\"", StringComparison.Ordinal))
                    {
                        throw ApiException.Invalid($"{tool.Path("input_schema")}: $ref is not allowed in an input schema");
                    }

                    break;
                }

                case "mcp_toolset":
                    break; // executed by Anthropic's service, never by a worker; kept as given
                default:
                    throw ApiException.Invalid($"{tool.Path("type")}: unknown tool type '{type}'; expected '{ToolPermissions.Toolset}', 'custom' or 'mcp_toolset'");
            }
        }
    }

    private static void ValidateToolConfig(JsonBody config, bool named)
    {
        config.OnlyFields(named ? ["name", "type", "enabled", "permission_policy"] : ["enabled", "permission_policy"]);
        if (named)
        {
            var name = config.RequireString("name");
            if (Array.IndexOf(ToolsetToolNames, name) < 0)
            {
                throw ApiException.Invalid($"{config.Path("name")}: unknown tool '{name}'; toolset tools: {string.Join(", ", ToolsetToolNames)}");
            }
        }

        config.OptionalBool("enabled");
        if (config.OptionalObject("permission_policy") is { } policy)
        {
            var type = policy.RequireString("type");
            if (type is not ("always_allow" or "always_ask" or "auto"))
            {
                throw ApiException.Invalid($"{policy.Path("type")}: Input should be 'always_allow', 'always_ask' or 'auto'");
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex ToolName();
}
