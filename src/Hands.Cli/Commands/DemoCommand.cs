using System.CommandLine;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands demo</c>: the whole local path in one command. Starts an embedded control plane on a free loopback port
/// with a throw-away data directory, creates a self-hosted environment, an environment key, a scripted agent and a
/// session, runs the environment worker (polling, in process, tools confined to a temporary workdir) so the agent's
/// tool calls really execute, streams the session to <c>done</c>, and shuts everything down.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var scenario = new Option<string>("--scenario") { Description = "Built-in scenario to play (demo, toolbox, hello, ...)", DefaultValueFactory = _ => "demo" };
        var keep = new Option<bool>("--keep-data") { Description = "Keep the demo's data directory" };
        var command = new Command("demo", "Run a session end to end on an embedded local control plane and stream it to done") { scenario, keep };
        command.SetAction(async (parse, ct) =>
        {
            var data = Path.Combine(Path.GetTempPath(), "hands-demo-" + Guid.NewGuid().ToString("N")[..8]);
            var console = AnsiConsole.Console;
            try
            {
                console.MarkupLine("[grey]· starting the local control plane[/]");
                await using var server = await ControlPlaneServer.StartAsync(new ControlPlaneOptions { Urls = "http://127.0.0.1:0", DataDirectory = data }, cancellationToken: ct);
                using var client = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(server.GeneratedApiKey!), new ManagedAgentsClientOptions { BaseUrl = server.BaseAddress });
                var env = await client.Environments.CreateAsync(new CreateEnvironmentRequest
                {
                    Name = "demo",
                    Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement,
                }, ct);
                var agent = await client.Agents.CreateAsync(new CreateAgentRequest
                {
                    Name = "demo-agent",
                    Model = JsonSerializer.SerializeToElement("scripted:" + parse.GetValue(scenario), ProtocolJsonContext.Default.String),
                    Tools = AgentCommand.ParseTools("builtin"),
                }, ct);
                var session = await client.Sessions.CreateAsync(new CreateSessionRequest
                {
                    Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
                    EnvironmentId = env.Id,
                    Title = "hands demo",
                }, ct);
                console.MarkupLine($"[grey]· control plane {Markup.Escape(server.BaseAddress.ToString())}  environment {env.Id}  agent {agent.Id}  session {session.Id}[/]");
                if (!OperatingSystem.IsLinux())
                {
                    throw new CliException("the worker runs on Linux only");
                }

                var key = await client.Environments.CreateKeyAsync(env.Id, ct);
                var workdir = Path.Combine(data, "workspace");
                using var stopWorker = CancellationTokenSource.CreateLinkedTokenSource(ct);
                var worker = DemoWorker.StartAsync(server.BaseAddress, env.Id, key.Key, workdir, stopWorker.Token);
                console.MarkupLine($"[grey]· worker polling in process; tools run in {Markup.Escape(workdir)}[/]");
                var reason = await SessionDriver.RunTurnAsync(client, session.Id, "Create hello.txt containing 'hi from the sandbox', then read it back.", new EventRenderer(console), ct);
                await stopWorker.CancelAsync();
                await worker;
                return reason == "end_turn" ? 0 : 1;
            }
            finally
            {
                if (!parse.GetValue(keep))
                {
                    try
                    {
                        Directory.Delete(data, recursive: true);
                    }
                    catch (IOException)
                    {
                    }
                }
            }
        });
        return command;
    }
}
