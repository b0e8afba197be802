using System.CommandLine;
using Hands.Cli;
using Hands.Cli.Commands;
using Hands.Common;

// What started hands may have left a descriptor open (a lock of flock, a supervisor's socket); the children hands starts
// (the engine's forwarder and sandboxes, which outlive it) must not keep it alive.
if (OperatingSystem.IsLinux())
{
    Hands.Engine.Hosting.InheritedDescriptors.KeepFromChildren();
}

try
{
    Hands.Cli.Configuration.DotEnv.Load(Directory.GetCurrentDirectory());
    Hands.Cli.Configuration.Credentials.Load();
}
catch (HandsException ex)
{
    Console.Error.WriteLine($"hands: {ex.Message}");
    return 1;
}

var root = new RootCommand("Hands: the hands of Claude Managed Agents. Self-hosted sandboxes, workers and a local control plane.");
root.Options.Add(CliContext.BaseUrl);
root.Options.Add(CliContext.ApiKey);
root.Subcommands.Add(ControlPlaneCommand.Create());
root.Subcommands.Add(EnvCommand.Create());
root.Subcommands.Add(AgentCommand.Create());
root.Subcommands.Add(SessionCommand.Create());
root.Subcommands.Add(StatsCommand.Create());
root.Subcommands.Add(PollCommand.Create());
root.Subcommands.Add(WebhookCommand.Create());
root.Subcommands.Add(WebhookSandboxCommand.Create());
root.Subcommands.Add(DoctorCommand.Create());
if (OperatingSystem.IsLinux())
{
    root.Subcommands.Add(DemoCommand.Create());
    root.Subcommands.Add(ForkDemoCommand.Create());
    root.Subcommands.Add(UpCommand.Create());
    root.Subcommands.Add(EngineCommand.Create());
}

root.Subcommands.Add(SandboxCommand.Create());
root.Subcommands.Add(ForkExploreCommand.Create());
root.Subcommands.Add(ImageCommand.Create());

// Off unless OTEL_* asks; named for the command (hands-engine, hands-poll, hands-up, ...).
using var telemetry = HostTelemetry.Start(args.FirstOrDefault(a => !a.StartsWith('-')) ?? "cli");
try
{
    return await root.Parse(args).InvokeAsync(new System.CommandLine.InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (HandsException ex)
{
    Console.Error.WriteLine($"hands: {ex.Message}");
    return 1;
}
