using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Hands.Common;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Worker.Tools;

namespace Hands.Worker.Telemetry;

/// <summary>
/// The span of one tool execution, as the official Sessions runner makes it (<c>lib/internal/tracing/tools.ts</c>):
/// INTERNAL, named <c>anthropic.tool_use {name}</c> for a built-in tool and <c>anthropic.custom_tool_use {name}</c>
/// for a custom one, a child of the work span, current while the tool runs, ended before its result is posted (the
/// post is its sibling). OK when the result is not an error, ERROR with <c>error.type=tool_error</c> when it is, no
/// status when the runner was stopped under it. The call's arguments and result are recorded only in content mode.
/// </summary>
internal sealed class ToolSpan
{
    private static readonly JsonWriterOptions ContentJson = new()
    {
        // Close to JSON.stringify, which the SDK's content attributes are: only quotes, backslashes and control
        // characters are escaped. The text is a span attribute, never HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    private readonly Activity _activity;
    private readonly ManagedAgentsTracingOptions _tracing;

    private ToolSpan(Activity activity, ManagedAgentsTracingOptions tracing)
    {
        _activity = activity;
        _tracing = tracing;
    }

    /// <summary>Starts the span of <paramref name="call"/> run by <paramref name="tool"/>; null when tracing is off or nobody listens.</summary>
    public static ToolSpan? Start(ManagedAgentsTracingOptions tracing, SessionEvent call, IWorkerTool tool, string sessionId, string? conversationId,
        ActivityContext parent)
    {
        if (!tracing.Enabled || !HandsTelemetry.Source.HasListeners())
        {
            return null;
        }

        var tags = new List<KeyValuePair<string, object?>>(10)
        {
            new("gen_ai.operation.name", "execute_tool"),
            new("gen_ai.provider.name", HandsTelemetry.ProviderName),
            new("gen_ai.tool.name", call.Name),
        };
        // Only a call to a member of a toolset has one (the Sessions events of 1.14.0 have no such field).
        if (call.Extra?.TryGetValue("toolset_name", out var toolset) == true && toolset.ValueKind == JsonValueKind.String)
        {
            tags.Add(new("anthropic.toolset.name", toolset.GetString()));
        }

        if (tool.Description is { Length: > 0 } description)
        {
            tags.Add(new("gen_ai.tool.description", description)); // not content: the tool's own, fixed text
        }

        tags.Add(new("gen_ai.tool.call.id", call.Id));
        tags.Add(new("gen_ai.tool.type", "function")); // the SDK's one value, for built-in and custom tools alike
        if (conversationId is not null)
        {
            tags.Add(new("gen_ai.conversation.id", conversationId));
        }

        tags.Add(new("anthropic.session.id", sessionId));
        if (call.SessionThreadId is not null)
        {
            tags.Add(new("anthropic.session.thread.id", call.SessionThreadId)); // a child thread's call; "" passes, as in the SDK
        }

        var prefix = call.Type == EventTypes.AgentCustomToolUse ? "anthropic.custom_tool_use " : "anthropic.tool_use ";
        var activity = HandsTelemetry.Source.StartActivity(prefix + call.Name, ActivityKind.Internal, parent, tags);
        return activity is null ? null : new ToolSpan(activity, tracing);
    }

    /// <summary>
    /// Ends the span with the run's <paramref name="output"/>; <paramref name="sent"/> is the content as it is posted.
    /// <paramref name="runnerStopped"/> makes an error result a cancellation (no status, no recorded result).
    /// </summary>
    public void End(JsonElement? input, ToolOutput output, IReadOnlyList<ContentBlock> sent, bool runnerStopped)
    {
        var succeeded = !output.IsError;
        var cancelled = !succeeded && runnerStopped;
        if (_tracing.RecordContent && _activity.IsAllDataRequested)
        {
            try
            {
                SetContent(_activity, input, cancelled ? null : sent, _tracing.MaxContentBytes);
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
            {
                // Telemetry never fails a tool run: the span goes without its content.
            }
        }

        if (succeeded)
        {
            _activity.SetStatus(ActivityStatusCode.Ok);
        }
        else if (!cancelled)
        {
            _activity.SetStatus(ActivityStatusCode.Error);
            _activity.SetTag("error.type", "tool_error");
        }

        _activity.Stop();
    }

    /// <summary>
    /// The SDK's content attributes within <paramref name="limit"/> UTF-8 bytes (<c>setContentAttributes</c>):
    /// <c>gen_ai.tool.call.arguments</c> is the input's JSON, whole or left out; <c>anthropic.tool_result.content</c>
    /// the JSON array of the result's blocks, losing blocks from its end to fit what the arguments left;
    /// <c>anthropic.content.truncated</c> when anything was left out.
    /// </summary>
    internal static void SetContent(Activity span, JsonElement? input, IReadOnlyList<ContentBlock>? result, long limit)
    {
        var truncated = false;
        long size = 0;
        string? arguments = null;
        if (input is { } value)
        {
            arguments = Json(writer => value.WriteTo(writer));
            var bytes = Encoding.UTF8.GetByteCount(arguments);
            if (bytes > limit)
            {
                arguments = null;
                truncated = true;
            }
            else
            {
                size += bytes;
            }
        }

        string? content = null;
        if (result is not null)
        {
            var kept = new List<string>(result.Count);
            long used = 2; // the brackets; each block after the first adds a comma
            foreach (var block in result)
            {
                var json = BlockJson(block);
                var next = used + (kept.Count == 0 ? 0 : 1) + Encoding.UTF8.GetByteCount(json);
                if (next > limit - size)
                {
                    break;
                }

                kept.Add(json);
                used = next;
            }

            truncated |= kept.Count < result.Count;
            content = "[" + string.Join(',', kept) + "]";
        }

        if (truncated)
        {
            span.SetTag("anthropic.content.truncated", true);
        }

        if (arguments is not null)
        {
            span.SetTag("gen_ai.tool.call.arguments", arguments);
        }

        if (content is not null)
        {
            span.SetTag("anthropic.tool_result.content", content);
        }
    }

    /// <summary>
    /// A result block as a span holds it (<c>toolResultContentBlocks</c>): a text or search result block keeps its
    /// fields except any <c>encrypted_*</c> one (and image or document data inside it); any other block only its type.
    /// </summary>
    private static string BlockJson(ContentBlock block)
    {
        if (block.Type is not ("text" or "search_result"))
        {
            return Json(writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("type", block.Type);
                writer.WriteEndObject();
            });
        }

        var element = JsonSerializer.SerializeToElement(block, ProtocolJsonContext.Default.ContentBlock);
        return Json(writer => WriteKept(writer, element));
    }

    private static void WriteKept(Utf8JsonWriter writer, JsonElement element)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                var type = element.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
                writer.WriteStartObject();
                if (type is "image" or "document")
                {
                    writer.WriteString("type", type); // large and binary: the type alone
                    writer.WriteEndObject();
                    return;
                }

                foreach (var property in element.EnumerateObject())
                {
                    if (property.Name.StartsWith("encrypted_", StringComparison.Ordinal))
                    {
                        continue; // opaque
                    }

                    writer.WritePropertyName(property.Name);
                    WriteKept(writer, property.Value);
                }

                writer.WriteEndObject();
                break;
            case JsonValueKind.Array:
                writer.WriteStartArray();
                foreach (var item in element.EnumerateArray())
                {
                    WriteKept(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                element.WriteTo(writer);
                break;
        }
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, ContentJson))
        {
            write(writer);
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
