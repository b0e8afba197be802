using System.Text.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli;

/// <summary>
/// Renders a session's events one line each: <c>· running</c>, <c>· thinking</c>, <c>→ tool  summary</c>,
/// <c>← result</c> or <c>✗ error</c>, the agent's text, and <c>· done (stop_reason=...)</c>. Colour only on a terminal.
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
                var message = e.Error is { ValueKind: JsonValueKind.Object } err && err.TryGetProperty("message", out var m) ? m.GetString() : "error";
                console.MarkupLine($"[red]✗ {Markup.Escape(message ?? "error")}[/]");
                break;
            case EventTypes.StatusIdle when e.StopReason?.Type is { } reason && reason != "requires_action":
                console.MarkupLine($"[grey]· done (stop_reason={Markup.Escape(reason)})[/]");
                return reason;
            case EventTypes.StatusTerminated:
                console.MarkupLine("[red]· session terminated[/]");
                return "terminated";
            case EventTypes.SessionDeleted:
                console.MarkupLine("[red]· session deleted[/]");
                return "deleted";
        }

        return null;
    }

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
