using System.Text.Json;
using Hands.ControlPlane.Infrastructure;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// Validates events a client sends (the whole batch before anything is written: all or nothing) and turns each into
/// a <see cref="SessionEvent"/>. Errors name the event index and field, e.g. <c>events[1].tool_use_id: Field required</c>.
/// </summary>
public static class EventValidator
{
    public static readonly string[] SendableTypes =
    [
        EventTypes.UserMessage, EventTypes.UserInterrupt, EventTypes.UserToolConfirmation, EventTypes.UserCustomToolResult,
        EventTypes.UserToolResult, EventTypes.UserDefineOutcome, EventTypes.SystemMessage,
    ];

    public static List<SessionEvent> Validate(JsonBody body, string field, int maxEvents, IReadOnlyCollection<string>? allowedTypes = null)
    {
        var items = body.RequireArray(field, maxEvents, minItems: 1);
        var result = new List<SessionEvent>(items.Count);
        for (var i = 0; i < items.Count; i++)
        {
            var e = body.Item(field, i, items[i]);
            var type = e.RequireString("type");
            if (allowedTypes is not null && !allowedTypes.Contains(type))
            {
                throw ApiException.Invalid($"{e.Path("type")}: '{type}' is not allowed here; allowed: {string.Join(", ", allowedTypes)}");
            }

            switch (type)
            {
                case EventTypes.UserMessage:
                    e.OnlyFields("type", "content");
                    ValidateContent(e, "content", required: true, textOnly: false);
                    break;
                case EventTypes.UserInterrupt:
                    e.OnlyFields("type", "session_thread_id");
                    e.OptionalString("session_thread_id");
                    break;
                case EventTypes.UserToolConfirmation:
                {
                    e.OnlyFields("type", "tool_use_id", "result", "deny_message", "session_thread_id");
                    e.RequireString("tool_use_id");
                    var verdict = e.RequireString("result");
                    if (verdict is not ("allow" or "deny"))
                    {
                        throw ApiException.Invalid($"{e.Path("result")}: Input should be 'allow' or 'deny'");
                    }

                    if (e.OptionalString("deny_message", maxLength: 10_000) is not null && verdict != "deny")
                    {
                        throw ApiException.Invalid($"{e.Path("deny_message")}: only allowed when result is 'deny'");
                    }

                    e.OptionalString("session_thread_id");
                    break;
                }

                case EventTypes.UserToolResult:
                case EventTypes.UserCustomToolResult:
                {
                    var idField = type == EventTypes.UserToolResult ? "tool_use_id" : "custom_tool_use_id";
                    e.OnlyFields("type", idField, "content", "is_error", "session_thread_id");
                    e.RequireString(idField);
                    e.OptionalBool("is_error");
                    e.OptionalString("session_thread_id");
                    ValidateContent(e, "content", required: false, textOnly: false);
                    break;
                }

                case EventTypes.UserDefineOutcome:
                {
                    e.OnlyFields("type", "description", "rubric", "max_iterations");
                    e.RequireString("description");
                    var rubric = e.RequireObject("rubric");
                    var rubricType = rubric.RequireString("type");
                    if (rubricType == "text")
                    {
                        rubric.OnlyFields("type", "content");
                        rubric.RequireString("content");
                    }
                    else if (rubricType == "file")
                    {
                        rubric.OnlyFields("type", "file_id");
                        rubric.RequireString("file_id");
                    }
                    else
                    {
                        throw ApiException.Invalid($"{rubric.Path("type")}: Input should be 'text' or 'file'");
                    }

                    e.OptionalInt("max_iterations", 1, 20);
                    break;
                }

                case EventTypes.SystemMessage:
                {
                    e.OnlyFields("type", "content");
                    ValidateContent(e, "content", required: true, textOnly: true, maxItems: 1000);
                    if (i != items.Count - 1)
                    {
                        throw ApiException.Invalid($"{e.Path("type")}: a system.message must be the last event of the request");
                    }

                    var previous = i > 0 ? result[i - 1].Type : null;
                    if (previous is not (EventTypes.UserMessage or EventTypes.UserToolResult or EventTypes.UserCustomToolResult))
                    {
                        throw ApiException.Invalid($"{e.Path("type")}: a system.message must immediately follow a user.message, user.tool_result or user.custom_tool_result");
                    }

                    break;
                }

                default:
                    throw ApiException.Invalid($"{e.Path("type")}: unknown event type '{type}'; sendable types: {string.Join(", ", SendableTypes)}");
            }

            var evt = e.Element.Deserialize(ProtocolJsonContext.Default.SessionEvent)!;
            result.Add(evt);
        }

        return result;
    }

    private static void ValidateContent(JsonBody e, string field, bool required, bool textOnly, int maxItems = 1000)
    {
        var blocks = required ? e.RequireArray(field, maxItems, minItems: 1) : e.OptionalArray(field, maxItems);
        if (blocks is null)
        {
            return;
        }

        for (var b = 0; b < blocks.Count; b++)
        {
            var block = e.Item(field, b, blocks[b]);
            var blockType = block.RequireString("type");
            switch (blockType)
            {
                case "text":
                    block.OnlyFields("type", "text", "cache_control", "citations");
                    block.RequireString("text", minLength: 0);
                    break;
                case "image" or "document" or "search_result" when !textOnly:
                    if (blockType != "search_result")
                    {
                        block.RequireObject("source").RequireString("type");
                    }

                    break;
                case "redacted" when !textOnly:
                    break;
                default:
                    throw ApiException.Invalid(
                        $"{block.Path("type")}: unsupported content block type '{blockType}'" + (textOnly ? "; only 'text' is allowed here" : ""));
            }
        }
    }
}
