using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// Reads tool inputs. The TypeScript worker does no schema validation (a wrong type surfaces as a Node error);
/// Hands names the field and the expected type instead (<c>read: view_range must be a list of integers</c>).
/// </summary>
internal static class ToolInput
{
    public static string? String(JsonElement input, string tool, string field)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw new ToolError($"{tool}: {field} must be a string");
    }

    public static bool Bool(JsonElement input, string tool, string field)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ToolError($"{tool}: {field} must be a boolean"),
        };
    }

    public static long? Integer(JsonElement input, string tool, string field)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : throw new ToolError($"{tool}: {field} must be an integer");
    }

    public static long[]? IntegerList(JsonElement input, string tool, string field)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty(field, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (v.ValueKind != JsonValueKind.Array)
        {
            throw new ToolError($"{tool}: {field} must be a list of integers");
        }

        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt64(out var n) ? n : throw new ToolError($"{tool}: {field} must be a list of integers")).ToArray();
    }
}
