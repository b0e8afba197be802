using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>
/// A JSON object from a request, read field by field so that every validation error names the field and the rule
/// (<c>metadata.owner: String should have at most 512 characters</c>), as the hosted service does.
/// </summary>
public sealed class JsonBody
{
    private readonly JsonElement _element;
    private readonly string _path;

    public JsonBody(JsonElement element, string path = "")
    {
        _element = element;
        _path = path;
    }

    public JsonElement Element => _element;

    public static async Task<JsonBody> ReadAsync(HttpRequest request, bool allowEmpty = false)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        if (buffer.Length == 0)
        {
            if (allowEmpty)
            {
                using var empty = JsonDocument.Parse("{}");
                return new JsonBody(empty.RootElement.Clone());
            }

            throw ApiException.Invalid("Request body is empty; expected a JSON object.");
        }

        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), new JsonDocumentOptions { MaxDepth = 128 });
            root = doc.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw ApiException.Invalid($"Request body is not valid JSON: {ex.Message}");
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid($"Request body must be a JSON object, not {Describe(root.ValueKind)}.");
        }

        return new JsonBody(root);
    }

    public string Path(string field) => _path.Length == 0 ? field : $"{_path}.{field}";

    public bool Has(string field) => _element.TryGetProperty(field, out _);

    public bool IsNull(string field) => _element.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.Null;

    /// <summary>Rejects fields outside <paramref name="allowed"/> with "Extra inputs are not permitted".</summary>
    public void OnlyFields(params string[] allowed)
    {
        foreach (var property in _element.EnumerateObject())
        {
            if (Array.IndexOf(allowed, property.Name) < 0)
            {
                throw ApiException.Invalid($"{Path(property.Name)}: Extra inputs are not permitted");
            }
        }
    }

    public string RequireString(string field, int minLength = 1, int maxLength = int.MaxValue)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Invalid($"{Path(field)}: Field required");
        }

        return CheckString(field, value, minLength, maxLength);
    }

    public string? OptionalString(string field, int minLength = 0, int maxLength = int.MaxValue)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return CheckString(field, value, minLength, maxLength);
    }

    private string CheckString(string field, JsonElement value, int minLength, int maxLength)
    {
        if (value.ValueKind != JsonValueKind.String)
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be a valid string, not {Describe(value.ValueKind)}");
        }

        var s = value.GetString()!;
        if (s.Length < minLength)
        {
            throw ApiException.Invalid($"{Path(field)}: String should have at least {minLength} character{(minLength == 1 ? "" : "s")}");
        }

        if (s.Length > maxLength)
        {
            throw ApiException.Invalid($"{Path(field)}: String should have at most {maxLength} characters");
        }

        return s;
    }

    public bool? OptionalBool(string field)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw ApiException.Invalid($"{Path(field)}: Input should be a valid boolean, not {Describe(value.ValueKind)}"),
        };
    }

    public int? OptionalInt(string field, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out var n))
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be a valid integer");
        }

        if (n < min || n > max)
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be between {min} and {max}");
        }

        return n;
    }

    public JsonBody RequireObject(string field)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            throw ApiException.Invalid($"{Path(field)}: Field required");
        }

        return AsObject(field, value);
    }

    public JsonBody? OptionalObject(string field)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return AsObject(field, value);
    }

    private JsonBody AsObject(string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be an object, not {Describe(value.ValueKind)}");
        }

        return new JsonBody(value, Path(field));
    }

    /// <summary>The array at <paramref name="field"/>, or null when absent.</summary>
    public List<JsonElement>? OptionalArray(string field, int maxItems = int.MaxValue, int minItems = 0)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be a valid list, not {Describe(value.ValueKind)}");
        }

        var items = value.EnumerateArray().Select(e => e.Clone()).ToList();
        if (items.Count > maxItems)
        {
            throw ApiException.Invalid($"{Path(field)}: List should have at most {maxItems} item{(maxItems == 1 ? "" : "s")}, not {items.Count}");
        }

        if (items.Count < minItems)
        {
            throw ApiException.Invalid($"{Path(field)}: List should have at least {minItems} item{(minItems == 1 ? "" : "s")}");
        }

        return items;
    }

    public List<JsonElement> RequireArray(string field, int maxItems = int.MaxValue, int minItems = 0) =>
        OptionalArray(field, maxItems, minItems) ?? throw ApiException.Invalid($"{Path(field)}: Field required");

    /// <summary>An item of an array as an object body, with the path <c>field[i]</c>.</summary>
    public JsonBody Item(string field, int index, JsonElement item)
    {
        var path = $"{Path(field)}[{index.ToString(CultureInfo.InvariantCulture)}]";
        if (item.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid($"{path}: Input should be an object, not {Describe(item.ValueKind)}");
        }

        return new JsonBody(item, path);
    }

    /// <summary>
    /// A metadata map: at most 16 pairs, keys 1-64 characters, string values up to 512. With
    /// <paramref name="allowNullValues"/> (updates), a null or empty value deletes the key.
    /// </summary>
    public Dictionary<string, string?>? OptionalMetadata(string field, bool allowNullValues = false)
    {
        if (!_element.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.Object)
        {
            throw ApiException.Invalid($"{Path(field)}: Input should be an object, not {Describe(value.ValueKind)}");
        }

        var result = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var p in value.EnumerateObject())
        {
            if (p.Name.Length is 0 or > 64)
            {
                throw ApiException.Invalid($"{Path(field)}: keys must be 1 to 64 characters ('{Truncate(p.Name)}')");
            }

            if (p.Value.ValueKind == JsonValueKind.Null && allowNullValues)
            {
                result[p.Name] = null;
                continue;
            }

            if (p.Value.ValueKind != JsonValueKind.String)
            {
                throw ApiException.Invalid($"{Path(field)}.{p.Name}: Input should be a valid string");
            }

            var s = p.Value.GetString()!;
            if (s.Length > 512)
            {
                throw ApiException.Invalid($"{Path(field)}.{p.Name}: String should have at most 512 characters");
            }

            result[p.Name] = s;
        }

        if (result.Count > 16)
        {
            throw ApiException.Invalid($"{Path(field)}: at most 16 key-value pairs are allowed, not {result.Count}");
        }

        return result;
    }

    private static string Truncate(string s) => s.Length <= 70 ? s : s[..67] + "...";

    public static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };
}
