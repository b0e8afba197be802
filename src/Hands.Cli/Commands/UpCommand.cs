using System.CommandLine;

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
        var command = new Command("up", "Start the local control plane, sandbox engine and a polling orchestrator together (needs root, like the engine)")
        {
            controlPlanePort, enginePort, ingressPort,
        };
        command.SetAction(async (parse, ct) =>
        {
            await using var stack = await LocalStack.StartAsync(null, parse.GetValue(controlPlanePort), parse.GetValue(enginePort), parse.GetValue(ingressPort),
                TimeSpan.FromSeconds(300), line => Console.WriteLine("· " + line), null, ct);
            var agent = await stack.CreateScriptedAgentAsync("local-demo", "demo", ct);
            Console.WriteLine();
            Console.WriteLine("Ready. In another shell:");
            Console.WriteLine($"  export ANTHROPIC_BASE_URL={stack.ControlPlane.BaseAddress.ToString().TrimEnd('/')}");
            Console.WriteLine($"  export ANTHROPIC_API_KEY={stack.ApiKey}");
            Console.WriteLine($"  export ANTHROPIC_ENVIRONMENT_ID={stack.EnvironmentId}");
            Console.WriteLine($"  export HANDS_AGENT_ID={agent}");
            Console.WriteLine($"  export TENSORLAKE_API_URL={stack.Engine.ApiAddress.ToString().TrimEnd('/')}");
            Console.WriteLine($"  export HANDS_ENGINE_API_KEY={stack.EngineApiKey}");
            Console.WriteLine("  hands session \"Create hello.txt containing 'hi from the sandbox', then read it back.\"");
            Console.WriteLine();
            await CliContext.ServeUntilCancelledAsync("Press Ctrl-C to stop (the stack and its sandboxes are removed).", ct);
            return 0;
        });
        return command;
    }
}
