using System.CommandLine;
using System.Text.Json;
using Hands.Cli.Configuration;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands session "PROMPT" [--session ID]</c>: the user's side. Creates a session (or reuses one), sends the prompt,
/// and renders the stream until the turn ends. Ctrl-C detaches and leaves the session running.
/// </summary>
internal static class SessionCommand
{
    public static Command Create()
    {
        var prompt = new Argument<string?>("prompt") { Description = "What to ask; without it, reattach to --session and follow its turn", Arity = ArgumentArity.ZeroOrOne };
        var session = new Option<string?>("--session") { Description = "Reuse this session instead of creating one" };
        var agent = new Option<string?>("--agent") { Description = "Agent of a new session (default: $HANDS_AGENT_ID)" };
        var environment = new Option<string?>("--environment") { Description = "Environment of a new session (default: $ANTHROPIC_ENVIRONMENT_ID)" };
        var title = new Option<string?>("--title") { Description = "Title of a new session" };
        var command = new Command("session", "Send a prompt to a session and stream it until the turn ends") { prompt, session, agent, environment, title };
        command.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var text = parse.GetValue(prompt);
            var sessionId = parse.GetValue(session);
            if (sessionId is null)
            {
                if (text is null)
                {
                    throw new CliException("nothing to do: give a PROMPT, or --session ID to reattach.");
                }

                var agentId = parse.GetValue(agent) ?? Settings.Get("HANDS_AGENT_ID")
                    ?? throw new CliException("no agent: pass --agent ID or set HANDS_AGENT_ID (hands agent create NAME prints one).");
                var environmentId = parse.GetValue(environment) ?? Settings.Get("ANTHROPIC_ENVIRONMENT_ID")
                    ?? throw new CliException("no environment: pass --environment ID or set ANTHROPIC_ENVIRONMENT_ID (hands env create NAME prints one).");
                var created = await client.Sessions.CreateAsync(new CreateSessionRequest
                {
                    Agent = JsonSerializer.SerializeToElement(agentId, ProtocolJsonContext.Default.String),
                    EnvironmentId = environmentId,
                    Title = parse.GetValue(title),
                }, ct);
                sessionId = created.Id;
            }

            var console = AnsiConsole.Console;
            console.MarkupLine($"[grey]· session {Markup.Escape(sessionId)}[/]");
            var renderer = new EventRenderer(console);
            try
            {
                var reason = text is null
                    ? await SessionDriver.ReattachAsync(client, sessionId, renderer, ct)
                    : await SessionDriver.RunTurnAsync(client, sessionId, text, renderer, ct);
                return reason == "end_turn" ? 0 : 1;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                console.MarkupLine($"[grey]· detached; the session keeps running. Reattach with: hands session --session {Markup.Escape(sessionId)}[/]");
                return 130;
            }
        });
        return command;
    }
}
