using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Hands.ControlPlane.Storage;

namespace Hands.ControlPlane.Scripted;

/// <summary>
/// A scripted agent: what the "model" does, turn by turn. Each <c>user.message</c> plays the next turn. Format:
/// <code>{"turns":[{"steps":[{"tool":"write","input":{...}}, {"tool":"my_tool","custom":true,"input":{...}},
///   {"tool":"bash","input":{...},"permission":"ask"}, {"message":"text with {{results[0].text}}"}, {"thinking":true}]}]}</code>
/// See docs/scenarios.md.
/// </summary>
public sealed partial class Scenario
{
    private Scenario(string name, List<List<ScenarioStep>> turns)
    {
        Name = name;
        Turns = turns;
    }

    public string Name { get; }
    public IReadOnlyList<IReadOnlyList<ScenarioStep>> Turns { get; }

    /// <summary>Parses and validates a scenario; errors name the turn, step and field.</summary>
    public static Scenario Parse(string name, string json)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException ex)
        {
            throw new ScenarioException($"scenario '{name}': not valid JSON: {ex.Message}");
        }

        if (root?["turns"] is not JsonArray turns || turns.Count == 0)
        {
            throw new ScenarioException($"scenario '{name}': \"turns\" must be a non-empty list");
        }

        var parsed = new List<List<ScenarioStep>>();
        for (var t = 0; t < turns.Count; t++)
        {
            if (turns[t]?["steps"] is not JsonArray steps)
            {
                throw new ScenarioException($"scenario '{name}': turns[{t}].steps must be a list");
            }

            var list = new List<ScenarioStep>();
            for (var s = 0; s < steps.Count; s++)
            {
                list.Add(ScenarioStep.Parse(steps[s], $"scenario '{name}': turns[{t}].steps[{s}]"));
            }

            parsed.Add(list);
        }

        return new Scenario(name, parsed);
    }

    /// <summary>Replaces <c>{{results[i].text}}</c>, <c>{{results[i].is_error}}</c> and <c>{{session.id}}</c>.</summary>
    public static string Render(string template, IReadOnlyList<StepResult> results, string sessionId) =>
        TemplatePattern().Replace(template, m =>
        {
            if (m.Groups["session"].Success)
            {
                return sessionId;
            }

            var index = int.Parse(m.Groups["index"].Value, CultureInfo.InvariantCulture);
            if (index < 0 || index >= results.Count)
            {
                return $"(no result {index})";
            }

            return m.Groups["field"].Value == "is_error" ? (results[index].IsError ? "true" : "false") : results[index].Text;
        });

    /// <summary>Renders every string inside a tool input.</summary>
    public static JsonElement RenderInput(JsonElement input, IReadOnlyList<StepResult> results, string sessionId)
    {
        var node = JsonNode.Parse(input.GetRawText());
        var rendered = RenderNode(node, results, sessionId);
        using var doc = JsonDocument.Parse(rendered?.ToJsonString() ?? "{}");
        return doc.RootElement.Clone();
    }

    private static JsonNode? RenderNode(JsonNode? node, IReadOnlyList<StepResult> results, string sessionId)
    {
        switch (node)
        {
            case JsonObject obj:
                foreach (var key in obj.Select(p => p.Key).ToList())
                {
                    obj[key] = RenderNode(obj[key]?.DeepClone(), results, sessionId);
                }

                return obj;
            case JsonArray arr:
                for (var i = 0; i < arr.Count; i++)
                {
                    arr[i] = RenderNode(arr[i]?.DeepClone(), results, sessionId);
                }

                return arr;
            case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                return JsonValue.Create(Render(value.GetValue<string>(), results, sessionId));
            default:
                return node;
        }
    }

    [GeneratedRegex(@"\{\{\s*(?:results\[(?<index>-?\d+)\]\.(?<field>text|is_error)|(?<session>session\.id))\s*\}\}")]
    private static partial Regex TemplatePattern();
}

/// <summary>One step of a turn: a built-in or custom tool call, an agent message, or a thinking signal.</summary>
public sealed class ScenarioStep
{
    public string? Tool { get; private init; }
    public bool Custom { get; private init; }
    public JsonElement Input { get; private init; }
    /// <summary><c>allow</c>, <c>ask</c> or <c>deny</c>; null takes the agent's permission policy.</summary>
    public string? Permission { get; private init; }
    public string? Message { get; private init; }
    public bool Thinking { get; private init; }
    /// <summary>A <c>refusal</c> step: the turn ends with <c>stop_reason: refusal</c> and these <c>stop_details</c> (<c>category</c>, <c>explanation</c>).</summary>
    public JsonElement? Refusal { get; private init; }
    /// <summary>An <c>error</c> step: a <c>session.error</c> with this error object (<c>type</c>, <c>message</c>); the turn ends with <c>retries_exhausted</c>.</summary>
    public JsonElement? Error { get; private init; }
    /// <summary>An <c>emit</c> step: this event, verbatim but for its id and time (newer event types such as <c>workflow_run.*</c>).</summary>
    public JsonElement? Emit { get; private init; }

    internal static ScenarioStep Parse(JsonNode? node, string where)
    {
        if (node is not JsonObject obj)
        {
            throw new ScenarioException($"{where}: must be an object");
        }

        foreach (var key in obj.Select(p => p.Key))
        {
            if (key is not ("tool" or "custom" or "input" or "permission" or "message" or "thinking" or "refusal" or "error" or "emit"))
            {
                throw new ScenarioException($"{where}: unknown field \"{key}\"");
            }
        }

        string[] kindNames = ["tool", "message", "thinking", "refusal", "error", "emit"];
        if (kindNames.Count(obj.ContainsKey) != 1)
        {
            throw new ScenarioException($"{where}: a step has exactly one of \"tool\", \"message\", \"thinking\", \"refusal\", \"error\" or \"emit\"");
        }

        if (obj["refusal"] is { } refusal)
        {
            var details = refusal as JsonObject ?? throw new ScenarioException($"{where}.refusal: must be an object (\"category\", \"explanation\")");
            var normalized = new JsonObject
            {
                ["category"] = details["category"]?.DeepClone(),
                ["explanation"] = details["explanation"]?.DeepClone(),
                ["type"] = "refusal",
            };
            return new ScenarioStep { Refusal = Element(normalized) };
        }

        if (obj["error"] is { } error)
        {
            if (error is not JsonObject errorObject || errorObject["type"]?.GetValueKind() != JsonValueKind.String || errorObject["message"]?.GetValueKind() != JsonValueKind.String)
            {
                throw new ScenarioException($"{where}.error: must be an object with string \"type\" and \"message\"");
            }

            var withRetry = (JsonObject)errorObject.DeepClone();
            withRetry["retry_status"] ??= new JsonObject { ["type"] = "exhausted" };
            return new ScenarioStep { Error = Element(withRetry) };
        }

        if (obj["emit"] is { } emit)
        {
            return emit is JsonObject emitted && emitted["type"]?.GetValueKind() == JsonValueKind.String
                ? new ScenarioStep { Emit = Element(emitted) }
                : throw new ScenarioException($"{where}.emit: must be an event object with a string \"type\"");
        }

        if (obj["message"] is { } message)
        {
            return message.GetValueKind() == JsonValueKind.String
                ? new ScenarioStep { Message = message.GetValue<string>() }
                : throw new ScenarioException($"{where}.message: must be a string");
        }

        if (obj.ContainsKey("thinking"))
        {
            return new ScenarioStep { Thinking = true };
        }

        if (obj["tool"] is not JsonValue toolValue || toolValue.GetValueKind() != JsonValueKind.String || toolValue.GetValue<string>().Length == 0)
        {
            throw new ScenarioException($"{where}.tool: must be a non-empty string");
        }

        var input = obj["input"] ?? new JsonObject();
        if (input is not JsonObject)
        {
            throw new ScenarioException($"{where}.input: must be an object");
        }

        string? permission = null;
        if (obj["permission"] is { } p)
        {
            permission = p.GetValueKind() == JsonValueKind.String ? p.GetValue<string>() : null;
            if (permission is not ("allow" or "ask" or "deny"))
            {
                throw new ScenarioException($"{where}.permission: must be \"allow\", \"ask\" or \"deny\"");
            }
        }

        var custom = obj["custom"] is { } c && c.GetValueKind() == JsonValueKind.True;
        if (custom && permission is not null)
        {
            throw new ScenarioException($"{where}: custom tools are not governed by permission policies");
        }

        return new ScenarioStep { Tool = toolValue.GetValue<string>(), Custom = custom, Input = Element(input), Permission = permission };
    }

    private static JsonElement Element(JsonNode node)
    {
        using var doc = JsonDocument.Parse(node.ToJsonString());
        return doc.RootElement.Clone();
    }
}

/// <summary>A scenario file is malformed or missing.</summary>
public sealed class ScenarioException : Exception
{
    public ScenarioException() { }

    public ScenarioException(string message) : base(message) { }

    public ScenarioException(string message, Exception innerException) : base(message, innerException) { }
}
