using System.CommandLine;
using Hands.ControlPlane;
using Hands.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Cli.Commands;

/// <summary><c>hands control-plane</c>: serve the local Managed Agents API until Ctrl-C.</summary>
internal static class ControlPlaneCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Address to listen on (loopback by default)", DefaultValueFactory = _ => CliContext.LocalDefault };
        var data = new Option<string>("--data") { Description = "Directory for the SQLite database", DefaultValueFactory = _ => ".hands/control-plane" };
        var scenarios = new Option<string?>("--scenarios") { Description = "Directory of scenario files (NAME.json) for agents with model scripted:NAME" };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "Seconds a work item lease lives without a heartbeat", DefaultValueFactory = _ => 60 };
        var memoryRoot = new Option<string>("--memory-mount-root") { Description = "Directory sessions mount memory stores under: each memory_store resource's mount_path is this plus the store's name", DefaultValueFactory = _ => "/mnt/memory" };
        var verbose = new Option<bool>("--verbose") { Description = "Log every request" };
        var command = new Command("control-plane", "Run the local Managed Agents API (environments, agents, sessions, events, work queue, webhooks) on loopback")
        {
            urls, data, scenarios, leaseTtl, memoryRoot, verbose,
        };
        command.SetAction(async (parse, ct) =>
        {
            var ttl = parse.GetValue(leaseTtl);
            if (ttl is < 1 or > 600)
            {
                throw new CliException("--lease-ttl must be between 1 and 600 seconds.");
            }

            var options = new ControlPlaneOptions
            {
                Urls = parse.GetValue(urls)!,
                DataDirectory = Path.GetFullPath(parse.GetValue(data)!),
                ApiKey = parse.GetValue(CliContext.ApiKey) ?? Environment.GetEnvironmentVariable("HANDS_API_KEY"),
                ScenariosDirectory = parse.GetValue(scenarios) is { } s ? Path.GetFullPath(s) : null,
                LeaseTtl = TimeSpan.FromSeconds(ttl),
                MemoryMountRoot = parse.GetValue(memoryRoot)!,
            };
            if (!options.MemoryMountRoot.StartsWith('/') || options.MemoryMountRoot.Split('/').Contains(".."))
            {
                throw new CliException("--memory-mount-root must be a clean absolute path.");
            }
            if (options.ScenariosDirectory is { } dir && !Directory.Exists(dir))
            {
                throw new CliException($"--scenarios: directory '{dir}' does not exist.");
            }

            var level = parse.GetValue(verbose) ? LogLevel.Information : LogLevel.Warning;
            await using var server = await StartAsync(options, level, ct);
            Console.WriteLine($"hands control-plane listening on {server.BaseAddress} (data: {options.DataDirectory})");
            if (server.GeneratedApiKey is { } key)
            {
                Console.WriteLine("A new API key was generated. It is shown only now and stored hashed:");
                Console.WriteLine($"  export ANTHROPIC_API_KEY={key}");
            }
            else
            {
                Console.WriteLine("Using the API key " + (options.ApiKey is null ? "set when this data directory was first used." : "given by --api-key / HANDS_API_KEY."));
            }

            Console.WriteLine($"  export ANTHROPIC_BASE_URL={server.BaseAddress.ToString().TrimEnd('/')}");
            await CliContext.ServeUntilCancelledAsync("Press Ctrl-C to stop.", ct);

            return 0;
        });
        return command;
    }

    private static async Task<ControlPlaneServer> StartAsync(ControlPlaneOptions options, LogLevel level, CancellationToken ct)
    {
        try
        {
            return await ControlPlaneServer.StartAsync(options, logging => logging.AddHandsConsole(timestamps: false).SetMinimumLevel(level), ct);
        }
        catch (IOException ex) when (ex.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            throw new CliException($"{options.Urls} is already in use; stop the other server or pass --urls with another port.");
        }
    }
}
