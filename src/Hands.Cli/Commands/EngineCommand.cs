using System.CommandLine;
using Hands.Engine.Network;
using Hands.Engine;
using Hands.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Cli.Commands;

/// <summary><c>hands engine</c>: serve the local sandbox engine (Tensorlake's API on loopback) until Ctrl-C.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class EngineCommand
{
    public static Command Create()
    {
        var urls = new Option<string>("--urls") { Description = "Lifecycle API address (Tensorlake's local-mode paths)", DefaultValueFactory = _ => SandboxClientFactory.LocalEngineUrl };
        var ingress = new Option<string>("--ingress") { Description = "Ingress address: the sandbox API by 'Host: {id}.local', ports by '{port}-{id}.localhost'", DefaultValueFactory = _ => "http://127.0.0.1:9443" };
        var data = new Option<string>("--data") { Description = "State directory (database, key, layers, snapshots, sandbox roots)", DefaultValueFactory = _ => SandboxClientFactory.LocalEngineData };
        var runtime = new Option<string>("--runtime") { Description = "OCI runtime binary", DefaultValueFactory = _ => "runc" };
        var criu = new Option<string?>("--criu") { Description = "CRIU >= 4.2 (default: /opt/hands/criu/criu, then criu on PATH)" };
        var sandboxd = new Option<string?>("--sandboxd") { Description = "The in-sandbox daemon binary (default: $HANDS_SANDBOXD_BINARY, then beside hands)" };
        var worker = new Option<string?>("--worker") { Description = "hands-worker to mount into sandboxes (default: $HANDS_WORKER_BINARY, then beside hands)" };
        var defaultImage = new Option<string>("--default-image") { Description = "Image for creates that name none: host or debian", DefaultValueFactory = _ => "host" };
        var hibernateAfter = new Option<int>("--hibernate-after") { Description = "Seconds a frozen sandbox stays in RAM before it is hibernated to disk", DefaultValueFactory = _ => 600 };
        var maxSandboxes = new Option<int>("--max-sandboxes") { Description = "Most live sandboxes at once", DefaultValueFactory = _ => 256 };
        var volumeMb = new Option<int?>("--volume-mb") { Description = "Size of the data volume that holds every sandbox disk, snapshot and checkpoint, allocated in full (default: half the free disk, at most 16384; a larger value grows it)" };
        var poolMemory = new Option<int?>("--pool-memory-mb") { Description = "Memory all warm pool sandboxes together may be given, as the sum of their memory_mb limits; refills stop there (default: a quarter of the host's RAM)" };
        var blankDisks = new Option<int>("--blank-disks") { Description = "Blank sandbox disks kept formatted ahead in the data volume, so creates and forks skip mkfs (about 4 MB each; 0: none)", DefaultValueFactory = _ => 8 };
        var spareNetworks = new Option<int>("--spare-networks") { Description = "Network namespaces kept made ahead for memory forks, so a fork skips the network's set-up before its restore (0: none; at most 64)", DefaultValueFactory = _ => 8 };
        var hostPorts = new Option<int[]>("--host-port") { Description = "A host loopback port sandboxes may reach as host.hands.internal:PORT (repeatable; e.g. the control plane's)", AllowMultipleArgumentsPerToken = true };
        var prepareDebian = new Option<bool>("--prepare-debian") { Description = "Build the debian base image (debootstrap, about a minute, once) before serving" };
        var userns = new Option<bool>("--userns") { Description = "STRONGER: sandbox root is an unprivileged host id (a user namespace); memory snapshots, hibernation and memory forks are off in this mode" };
        var anonymous = new Option<bool>("--insecure-no-api-key") { Description = "WEAKER: with HANDS_ENGINE_API_KEY unset, serve callers without any key (any local user can then run code as a sandbox's root)" };
        var command = new Command("engine", "Run the local sandbox engine: Tensorlake's API on loopback over runc, overlayfs, network namespaces and CRIU")
        {
            urls, ingress, data, runtime, criu, sandboxd, worker, defaultImage, hibernateAfter, maxSandboxes, volumeMb, poolMemory, blankDisks, spareNetworks, hostPorts, prepareDebian, userns, anonymous,
        };
        command.SetAction(async (parse, ct) =>
        {
            var options = new EngineOptions
            {
                ApiUrl = ParseUrl(parse.GetValue(urls)!, "--urls"),
                IngressUrl = ParseUrl(parse.GetValue(ingress)!, "--ingress"),
                DataDirectory = Path.GetFullPath(parse.GetValue(data)!),
                RuntimeBinary = parse.GetValue(runtime)!,
                CriuBinary = parse.GetValue(criu),
                SandboxDaemonBinary = parse.GetValue(sandboxd),
                WorkerBinary = parse.GetValue(worker),
                DefaultImage = parse.GetValue(defaultImage)!,
                HibernateAfter = TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(hibernateAfter))),
                MaxSandboxes = Math.Max(1, parse.GetValue(maxSandboxes)),
                VolumeMb = parse.GetValue(volumeMb),
                PoolMemoryMb = parse.GetValue(poolMemory) is { } budget ? budget >= 0 ? budget : throw new CliException($"--pool-memory-mb: {budget} is negative.") : null,
                BlankDisks = parse.GetValue(blankDisks) is >= 0 and var blanks ? blanks : throw new CliException($"--blank-disks: {parse.GetValue(blankDisks)} is negative."),
                SpareNetworks = parse.GetValue(spareNetworks) is >= 0 and <= EngineOptions.MaxSpareNetworks and var spares ? spares
                    : throw new CliException($"--spare-networks: {parse.GetValue(spareNetworks)} is not from 0 to {EngineOptions.MaxSpareNetworks}."),
                HostPorts = ValidPorts(parse.GetValue(hostPorts) ?? []),
                ApiKey = Environment.GetEnvironmentVariable("HANDS_ENGINE_API_KEY") is { Length: > 0 } key ? key : null,
                AllowAnonymous = parse.GetValue(anonymous),
                UserNamespace = parse.GetValue(userns),
            };
            options.HostPortForwarderCommand = ForwarderCommand(options.DataDirectory);
            var keyGiven = options.ApiKey is not null;
            await using var engine = await EngineServer.StartAsync(options, logging => logging.AddHandsConsole()
                .SetMinimumLevel(LogLevel.Information).AddFilter("Microsoft", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning), ct);
            if (parse.GetValue(prepareDebian))
            {
                Console.WriteLine("building the debian base image (once; about a minute)...");
                await engine.PrepareDebianAsync(ct);
            }

            Console.WriteLine($"hands engine: API {engine.ApiAddress}, ingress {engine.IngressAddress}, data {options.DataDirectory}");
            Console.WriteLine($"Data volume: {engine.VolumeImage}, {engine.VolumeSizeBytes >> 20} MiB, {engine.VolumeFreeBytes >> 20} MiB free (sandbox disks default to {Hands.Engine.EngineServer.DefaultDiskMb} MiB each, sparse).");
            Console.WriteLine($"Warm pools may hold {engine.PoolMemoryBudgetMb} MiB of memory limits (--pool-memory-mb).");
            Console.WriteLine(engine.CriuAvailable ? "CRIU works: memory snapshots and hibernation are on." : $"CRIU unavailable: {engine.CriuProblem}");
            Console.WriteLine(options.ApiKey is null
                ? "WARNING: no API key (--insecure-no-api-key): any local user can create sandboxes and run code in them."
                : keyGiven
                    ? "Requests need 'Authorization: Bearer $HANDS_ENGINE_API_KEY'."
                    : $"Requests need the key in {Hands.Engine.Api.EngineApiKeyFile.PathIn(options.DataDirectory)} (root only). hands run as root finds it (HANDS_ENGINE_DATA, default .hands/engine); others: export HANDS_ENGINE_API_KEY=$(sudo cat {Hands.Engine.Api.EngineApiKeyFile.PathIn(options.DataDirectory)})");
            Console.WriteLine($"  export TENSORLAKE_API_URL={engine.ApiAddress.ToString().TrimEnd('/')}");
            await CliContext.ServeUntilCancelledAsync("Press Ctrl-C to stop (sandboxes keep running; the next start re-attaches to them).", ct);

            return 0;
        });
        command.Subcommands.Add(CreateForwarder(data));
        command.Subcommands.Add(CreateTeardown(data, runtime, sandboxd, worker));
        return command;
    }

    /// <summary>
    /// <c>hands engine teardown</c>: what uninstalling needs from the engine. With the engine's service stopped, starts it
    /// once more on its data directory (loopback, ephemeral ports, a throw-away key), deletes every pool and every
    /// sandbox, and stops it; an engine that stops with no sandbox left unmounts its data volume, removes its firewall
    /// chains and ends its host-port forwarder, so no container, mount, namespace, veth or cgroup is left. Snapshots,
    /// images and the database stay (they are data; delete the directory to drop them).
    /// </summary>
    private static Command CreateTeardown(Option<string> data, Option<string> runtime, Option<string?> sandboxd, Option<string?> worker)
    {
        var teardown = new Command("teardown", "Delete every sandbox and pool of an engine's data directory and leave nothing running or mounted (stop the engine first; data is kept)")
        {
            data, runtime, sandboxd, worker,
        };
        teardown.SetAction(async (parse, ct) =>
        {
            var dataDirectory = Path.GetFullPath(parse.GetValue(data)!);
            if (!Directory.Exists(dataDirectory))
            {
                Console.WriteLine($"hands engine teardown: {dataDirectory} does not exist; nothing to do");
                return 0;
            }

            var key = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
            var options = new EngineOptions
            {
                ApiUrl = new Uri("http://127.0.0.1:0"),
                IngressUrl = new Uri("http://127.0.0.1:0"),
                DataDirectory = dataDirectory,
                RuntimeBinary = parse.GetValue(runtime)!,
                SandboxDaemonBinary = parse.GetValue(sandboxd),
                WorkerBinary = parse.GetValue(worker),
                ApiKey = key,
                // It only removes: it starts no mkfs and makes no spare network, and the blank disks go too.
                BlankDisks = 0,
                SpareNetworks = 0,
            };
            options.HostPortForwarderCommand = ForwarderCommand(options.DataDirectory);
            var removed = 0;
            await using (var engine = await EngineServer.StartAsync(options, logging => logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning), ct))
            {
                using var client = new Hands.Sandboxes.Client.TensorlakeClient(new Hands.Sandboxes.Client.TensorlakeClientOptions { ApiUrl = engine.ApiAddress, ApiKey = key });
                foreach (var pool in await client.ListPoolsAsync(ct))
                {
                    await client.DeletePoolAsync(pool.PoolId ?? pool.Id!, ct);
                }

                // A pool's warm sandboxes go with it; whatever is left (or was booting) is deleted until none is.
                for (var pass = 0; pass < 10; pass++)
                {
                    var alive = new List<string>();
                    await foreach (var sandbox in client.ListAllAsync(cancellationToken: ct))
                    {
                        if (sandbox.Status is not ("terminated" or "deleted"))
                        {
                            alive.Add(sandbox.SandboxId ?? sandbox.Id!);
                        }
                    }

                    if (alive.Count == 0)
                    {
                        break;
                    }

                    foreach (var id in alive)
                    {
                        await client.DeleteAsync(id, ct);
                        removed++;
                    }
                }
            }

            Console.WriteLine($"hands engine teardown: {removed} sandbox(es) deleted; {dataDirectory} is unmounted and kept (remove it to drop snapshots and images)");
            return 0;
        });
        return teardown;
    }

    /// <summary>
    /// <c>hands engine forwarder</c>: the process the engine starts to serve its sandboxes' host-port forwards so that they
    /// outlive it (hidden: the engine starts it, and finds it again after a restart).
    /// </summary>
    private static Command CreateForwarder(Option<string> data)
    {
        var forwarder = new Command("forwarder", "Serve an engine's host-port forwards from a process of their own (started by the engine)") { Hidden = true };
        forwarder.Options.Add(data);
        forwarder.SetAction(async (parse, ct) => await HostPortForwarder.RunAsync(Path.GetFullPath(parse.GetValue(data)!), ct));
        return forwarder;
    }

    /// <summary>This very program, run as <c>engine forwarder --data DIR</c>.</summary>
    private static string[] ForwarderCommand(string dataDirectory)
    {
        var self = Environment.ProcessPath ?? throw new CliException("cannot tell which program this is, to start the host-port forwarder");
        string[] program = Path.GetFileNameWithoutExtension(self) == "dotnet"
            ? [self, System.Reflection.Assembly.GetEntryAssembly()!.Location]
            : [self];
        return [.. program, "engine", "forwarder", "--data", dataDirectory];
    }

    private static int[] ValidPorts(int[] ports) =>
        ports.Where(p => p is < 1 or > 65535).Select(p => (int?)p).FirstOrDefault() is { } bad ? throw new CliException($"--host-port: {bad} is not a port (1-65535).") : ports;

    private static Uri ParseUrl(string value, string option) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme == "http" ? uri : throw new CliException($"{option}: '{value}' is not an http:// URL.");
}
