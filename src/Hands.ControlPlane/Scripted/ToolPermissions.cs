using System.Text.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Scripted;

/// <summary>
/// Evaluates an agent's permission policy for a built-in tool call, as the service stamps <c>evaluated_permission</c>:
/// <c>always_allow</c> → allow, <c>always_ask</c> → ask, a disabled tool → deny. <c>auto</c> needs a classifier the
/// local control plane does not have, so it evaluates to allow (documented in docs/control-plane.md).
/// </summary>
public static class ToolPermissions
{
    public const string Toolset = "agent_toolset_20260401";

    public static string Evaluate(SessionAgent agent, string toolName)
    {
        foreach (var tool in agent.Tools)
        {
            if (tool.ValueKind != JsonValueKind.Object
                || !tool.TryGetProperty("type", out var type) || type.GetString() != Toolset)
            {
                continue;
            }

            var enabled = true;
            string? policy = null;
            if (tool.TryGetProperty("default_config", out var defaults) && defaults.ValueKind == JsonValueKind.Object)
            {
                enabled = !(defaults.TryGetProperty("enabled", out var e) && e.ValueKind == JsonValueKind.False);
                policy = PolicyType(defaults) ?? policy;
            }

            if (tool.TryGetProperty("configs", out var configs) && configs.ValueKind == JsonValueKind.Array)
            {
                foreach (var config in configs.EnumerateArray())
                {
                    if (config.TryGetProperty("name", out var name) && name.GetString() == toolName)
                    {
                        if (config.TryGetProperty("enabled", out var e))
                        {
                            enabled = e.ValueKind != JsonValueKind.False;
                        }

                        policy = PolicyType(config) ?? policy;
                    }
                }
            }

            if (!enabled)
            {
                return "deny";
            }

            return policy == "always_ask" ? "ask" : "allow";
        }

        return "allow";
    }

    private static string? PolicyType(JsonElement config) =>
        config.TryGetProperty("permission_policy", out var p) && p.ValueKind == JsonValueKind.Object
        && p.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()
            : null;
}
