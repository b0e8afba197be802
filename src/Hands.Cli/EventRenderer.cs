using System.Text.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli;

/// <summary>
/// Renders a session's events one line each: <c>· running</c>, <c>· thinking</c>, <c>→ tool  summary</c>,
/// <c>← result</c> or <c>✗ error</c> (a <c>session.error</c> names its type and what to do next), the agent's text,
/// <c>· done (stop_reason=...)</c> or <c>· refused (category=...): explanation</c>, threads and workflow runs. Event types
/// it does not know are skipped, never an error. Colour only on a terminal.
/// </summary>
internal sealed class EventRenderer(IAnsiConsole console)
{
    private readonly Dictionary<string, string> _toolNames = new(StringComparer.Ordinal);

    /// <summary>Renders one event; returns the stop reason when the turn is over (idle, not <c>requires_action</c>).</summary>
    public string? Render(SessionEvent e)
    {
        switch (e.Type)
        {
            case EventTypes.StatusRunning:
                console.MarkupLine("[grey]· running[/]");
                break;
            case EventTypes.AgentThinking:
                console.MarkupLine("[grey]· thinking[/]");
                break;
            case EventTypes.AgentMessage:
                console.WriteLine(e.Text);
                break;
            case EventTypes.AgentToolUse or EventTypes.AgentCustomToolUse:
                _toolNames[e.Id ?? ""] = e.Name ?? "?";
                var ask = e.EvaluatedPermission is "ask" ? " [yellow](needs confirmation)[/]" : e.EvaluatedPermission is "deny" ? " [red](denied)[/]" : "";
                console.MarkupLine($"[cyan]→ {Markup.Escape(e.Name ?? "?")}[/]  {Markup.Escape(Summary(e.Input))}{ask}");
                break;
            case EventTypes.UserToolResult or EventTypes.UserCustomToolResult:
                var text = OneLine(e.Text);
                if (e.IsError == true)
                {
                    console.MarkupLine($"[red]✗ {Markup.Escape(text)}[/]");
                }
                else
                {
                    console.MarkupLine($"[green]←[/] {Markup.Escape(text)}");
                }

                break;
            case EventTypes.SessionError:
                console.MarkupLine($"[red]✗ {Markup.Escape(ErrorLine(e.Error))}[/]");
                break;
            case EventTypes.StatusIdle when e.StopReason?.Type == StopReasons.Refusal:
                console.MarkupLine($"[red]· refused{Markup.Escape(RefusalDetails(e.StopDetails))}[/]");
                return StopReasons.Refusal;
            case EventTypes.StatusIdle when e.StopReason?.Type is { } reason && reason != StopReasons.RequiresAction:
                console.MarkupLine($"[grey]· done (stop_reason={Markup.Escape(reason)})[/]");
                return reason;
            case EventTypes.ThreadCreated:
                console.MarkupLine($"[grey]· thread {Markup.Escape(e.SessionThreadId ?? "?")} created{Markup.Escape(Field(e, "workflow_run_id") is { } run ? $" for workflow run {run}" : "")}[/]");
                break;
            case { } type when type.StartsWith(EventTypes.WorkflowRunPrefix, StringComparison.Ordinal):
                var what = type[EventTypes.WorkflowRunPrefix.Length..].Replace("status_", "", StringComparison.Ordinal).Replace('_', ' ');
                var failed = type == EventTypes.WorkflowRunPrefix + "error" ? $": {ErrorLine(e.Error)}" : "";
                console.MarkupLine($"[grey]· workflow run {Markup.Escape(Field(e, "workflow_run_id") ?? "?")} {Markup.Escape(what)}{Markup.Escape(failed)}[/]");
                break;
            case EventTypes.StatusTerminated:
                console.MarkupLine("[red]· session terminated[/]");
                return "terminated";
            case EventTypes.SessionDeleted:
                console.MarkupLine("[red]· session deleted[/]");
                return "deleted";
        }

        return null;
    }

    /// <summary><c>type: message</c> of an error object, and what the client should do when the service says (<c>retry_status</c>).</summary>
    private static string ErrorLine(JsonElement? error)
    {
        if (error is not { ValueKind: JsonValueKind.Object } err)
        {
            return "error";
        }

        var type = err.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        var message = err.TryGetProperty("message", out var m) && m.ValueKind == JsonValueKind.String ? m.GetString() : null;
        var retry = err.TryGetProperty("retry_status", out var r) && r.ValueKind == JsonValueKind.Object && r.TryGetProperty("type", out var rt) ? rt.GetString() : null;
        var hint = retry switch
        {
            "retrying" => " (the service retries)",
            "exhausted" => " (the turn ended; send a new message to go on)",
            "terminal" => " (the session cannot go on)",
            _ => "",
        };
        return $"{(type is null ? "" : type + ": ")}{message ?? "error"}{hint}";
    }

    private static string RefusalDetails(JsonElement details)
    {
        if (details.ValueKind != JsonValueKind.Object)
        {
            return "";
        }

        var category = details.TryGetProperty("category", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        var explanation = details.TryGetProperty("explanation", out var x) && x.ValueKind == JsonValueKind.String ? x.GetString() : null;
        return (category is null ? "" : $" (category={category})") + (explanation is null ? "" : $": {OneLine(explanation)}");
    }

    private static string? Field(SessionEvent e, string name) =>
        e.Extra is { } extra && extra.TryGetValue(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private static string Summary(JsonElement? input)
    {
        if (input is not { ValueKind: JsonValueKind.Object } obj)
        {
            return "";
        }

        foreach (var key in new[] { "command", "file_path", "pattern" })
        {
            if (obj.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String)
            {
                return OneLine(v.GetString()!);
            }
        }

        return OneLine(obj.GetRawText());
    }

    private static string OneLine(string text)
    {
        var line = text.ReplaceLineEndings(" ⏎ ").Trim();
        return line.Length <= 120 ? line : line[..117] + "...";
    }
}
