using System.CommandLine;
using System.Text.Json;
using Hands.Cli.Dashboard;
using Hands.Orchestrator;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands demo</c>: the whole system in one command. Starts the local control plane, the sandbox engine and a
/// polling orchestrator (<see cref="LocalStack"/>), creates a scripted agent and a session, and streams the session
/// to <c>done</c> while its tool calls run in the session's own sandbox; then removes everything.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class DemoCommand
{
    public const string Prompt = "Create hello.txt containing 'hi from the sandbox', then read it back.";

    public static Command Create()
    {
        var scenario = new Option<string>("--scenario") { Description = "Built-in scenario to play (demo, toolbox, hello, ...)", DefaultValueFactory = _ => "demo" };
        var dashboardOption = DashboardLaunch.CreateOption();
        dashboardOption.Description += "; it stays up after the session until Ctrl-C";
        var command = new Command("demo", "Run a session end to end through a real sandbox on an embedded local stack, and stream it to done") { scenario, dashboardOption };
        command.SetAction(async (parse, ct) =>
        {
            var console = AnsiConsole.Console;
            void Progress(string line) => console.MarkupLine($"[grey]· {Markup.Escape(line)}[/]");
            // Started first and stopped last, so it receives the stack's spans up to its removal.
            await using var dashboard = parse.GetValue(dashboardOption) ? await DashboardLaunch.StartAsync("demo", Progress, ct) : null;
            await using var stack = await LocalStack.StartAsync(null, 0, 0, 0, TimeSpan.FromSeconds(5), Progress, null, ct, dashboard?.Dashboard.OtlpHttpEndpoint);
            stack.Orchestrator.Spawned += outcome =>
            {
                if (!outcome.Succeeded)
                {
                    console.MarkupLine($"[red]✗ spawn failed: {Markup.Escape(outcome.Detail)}[/]");
                }
            };
            var agent = await stack.CreateScriptedAgentAsync("demo-agent", parse.GetValue(scenario)!, ct);
            var session = await stack.Client.Sessions.CreateAsync(new CreateSessionRequest
            {
                Agent = JsonSerializer.SerializeToElement(agent, ProtocolJsonContext.Default.String),
                EnvironmentId = stack.EnvironmentId,
                Title = "hands demo",
            }, ct);
            console.MarkupLine($"[grey]· agent {agent}  session {session.Id}  sandbox {SandboxNames.ForSession(session.Id)}[/]");
            var reason = await SessionDriver.RunTurnAsync(stack.Client, session.Id, Prompt, new EventRenderer(console), ct);
            if (dashboard is not null)
            {
                // The stack stays up, so the worker idles out (5 s) and flushes its spans into the session's trace.
                dashboard.Flush();
                console.MarkupLine($"[green]Dashboard: {dashboard.Dashboard.Url}[/] [grey](session {session.Id}: its trace is hands.orchestrator.spawn)[/]");
                await CliContext.ServeUntilCancelledAsync("Press Ctrl-C to stop (the dashboard, the stack and its sandboxes are removed).", ct);
            }

            return reason == "end_turn" ? 0 : 1;
        });
        return command;
    }
}
