using System.CommandLine;
using Hands.Cli.Dashboard;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands up</c>: the local control plane, the sandbox engine and a polling orchestrator together, on the usual
/// ports, until Ctrl-C; prints what to export so <c>hands session</c> (and any Managed Agents client) can use them.
/// Throw-away: everything it made, sandboxes included, is removed when it stops.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class UpCommand
{
    public static Command Create()
    {
        var controlPlanePort = new Option<int>("--port") { Description = "Control plane port", DefaultValueFactory = _ => 8787 };
        var enginePort = new Option<int>("--engine-port") { Description = "Sandbox engine API port", DefaultValueFactory = _ => 8900 };
        var ingressPort = new Option<int>("--ingress-port") { Description = "Sandbox ingress port", DefaultValueFactory = _ => 9443 };
        var dashboardOption = DashboardLaunch.CreateOption();
        var command = new Command("up", "Start the local control plane, sandbox engine and a polling orchestrator together (needs root, like the engine)")
        {
            controlPlanePort, enginePort, ingressPort, dashboardOption,
        };
        command.SetAction(async (parse, ct) =>
        {
            void Progress(string line) => Console.WriteLine("· " + line);
            // Started first and stopped last, so it receives the stack's spans up to its removal.
            await using var dashboard = parse.GetValue(dashboardOption) ? await DashboardLaunch.StartAsync("up", Progress, ct) : null;
            await using var stack = await LocalStack.StartAsync(null, parse.GetValue(controlPlanePort), parse.GetValue(enginePort), parse.GetValue(ingressPort),
                TimeSpan.FromSeconds(300), Progress, null, ct, dashboard?.Dashboard.OtlpHttpEndpoint);
            var agent = await stack.CreateScriptedAgentAsync("local-demo", "demo", ct);
            Console.WriteLine();
            Console.WriteLine("Ready. In another shell:");
            Console.WriteLine($"  export ANTHROPIC_BASE_URL={stack.ControlPlane.BaseAddress.ToString().TrimEnd('/')}");
            Console.WriteLine($"  export ANTHROPIC_API_KEY={stack.ApiKey}");
            Console.WriteLine($"  export ANTHROPIC_ENVIRONMENT_ID={stack.EnvironmentId}");
            Console.WriteLine($"  export HANDS_AGENT_ID={agent}");
            Console.WriteLine($"  export TENSORLAKE_API_URL={stack.Engine.ApiAddress.ToString().TrimEnd('/')}");
            Console.WriteLine($"  export HANDS_ENGINE_API_KEY={stack.EngineApiKey}");
            if (dashboard is not null)
            {
                Console.WriteLine($"  export OTEL_EXPORTER_OTLP_ENDPOINT={dashboard.Dashboard.OtlpHttpEndpoint.ToString().TrimEnd('/')}");
                Console.WriteLine("  export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf");
            }

            Console.WriteLine("  hands session \"Create hello.txt containing 'hi from the sandbox', then read it back.\"");
            Console.WriteLine();
            if (dashboard is not null)
            {
                Console.WriteLine($"Dashboard: {dashboard.Dashboard.Url} (each session is a trace: claim, sandbox, worker, tool calls)");
            }

            await CliContext.ServeUntilCancelledAsync("Press Ctrl-C to stop (the stack and its sandboxes are removed).", ct);
            return 0;
        });
        return command;
    }
}
