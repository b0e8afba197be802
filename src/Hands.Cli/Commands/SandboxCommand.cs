using System.CommandLine;
using System.Globalization;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary><c>hands sandbox ls|create|exec|cp|logs|checkpoint|fork|suspend|resume|expose|rm|pool</c> against any Tensorlake API.</summary>
internal static class SandboxCommand
{
    public static Command Create()
    {
        var command = new Command("sandbox", "Sandboxes on the local engine (default) or Tensorlake's cloud (TENSORLAKE_API_KEY)");
        command.Subcommands.Add(List());
        command.Subcommands.Add(CreateSandbox());
        command.Subcommands.Add(Exec());
        command.Subcommands.Add(Copy());
        command.Subcommands.Add(Logs());
        command.Subcommands.Add(Checkpoint());
        command.Subcommands.Add(Fork());
        command.Subcommands.Add(Suspend());
        command.Subcommands.Add(Resume());
        command.Subcommands.Add(Resize());
        command.Subcommands.Add(Expose());
        command.Subcommands.Add(Remove());
        command.Subcommands.Add(SandboxPoolCommand.Create());
        command.Subcommands.Add(SandboxNetworkCommand.Create());
        return command;
    }

    private static Argument<string> SandboxArgument() => new("sandbox") { Description = "Sandbox id or name" };

    private static Command List()
    {
        var all = new Option<bool>("--all") { Description = "Include terminated sandboxes" };
        var command = new Command("ls", "List sandboxes") { all };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var table = new Table().AddColumns("ID", "NAME", "STATUS", "IMAGE", "PORTS", "CREATED");
            await foreach (var s in client.ListAllAsync(cancellationToken: ct))
            {
                if (s.Status == SandboxStatus.Terminated && !parse.GetValue(all))
                {
                    continue;
                }

                var status = s.SuspendTier is { } tier ? $"{s.Status} ({tier})" : s.Status;
                table.AddRow(Markup.Escape(s.CanonicalId), Markup.Escape(s.Name ?? "-"), status, Markup.Escape(s.Image ?? "-"),
                    s.ExposedPorts.Count == 0 ? "-" : string.Join(',', s.ExposedPorts), s.CreatedAt?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-");
            }

            Output.Table(table);
            return 0;
        });
        return command;
    }

    private static Command CreateSandbox()
    {
        var name = new Option<string?>("--name") { Description = "A name (lowercase slug); named sandboxes suspend when idle instead of terminating" };
        var image = new Option<string?>("--image") { Description = "Image (local engine: host, debian, or a built image)" };
        var cpus = new Option<double?>("--cpus") { Description = "CPUs (default 1)" };
        var memory = new Option<int?>("--memory") { Description = "Memory in MB (default 1024)" };
        var timeout = new Option<int?>("--timeout") { Description = "Idle seconds before suspend (named) or termination (default 600; 0 = never)" };
        var expose = new Option<int[]>("--expose") { Description = "Expose a port through the ingress (repeatable)", AllowMultipleArgumentsPerToken = true };
        var open = new Option<bool>("--public") { Description = "Exposed ports need no API key" };
        var snapshot = new Option<string?>("--snapshot") { Description = "Restore from this snapshot (a fork)" };
        var noInternet = new Option<bool>("--no-internet") { Description = "Block all outbound traffic" };
        var command = new Command("create", "Create a sandbox and print its id") { name, image, cpus, memory, timeout, expose, open, snapshot, noInternet };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var request = new CreateSandboxRequest
            {
                Name = parse.GetValue(name),
                Image = parse.GetValue(image),
                Resources = new SandboxResources { Cpus = parse.GetValue(cpus) ?? 1.0, MemoryMb = parse.GetValue(memory) ?? 1024 },
                TimeoutSecs = parse.GetValue(timeout),
                ExposedPorts = parse.GetValue(expose) is { Length: > 0 } ports ? [.. ports] : null,
                AllowUnauthenticatedAccess = parse.GetValue(open) ? true : null,
                SnapshotId = parse.GetValue(snapshot),
                Network = parse.GetValue(noInternet) ? new NetworkPolicy { AllowInternetAccess = false } : null,
            };
            await Console.Error.WriteLineAsync("creating sandbox...");
            var created = await client.CreateAsync(request, ct);
            var info = created.Status == SandboxStatus.Running ? await client.GetAsync(created.CanonicalId, ct)
                : await client.WaitForStatusAsync(created.CanonicalId, [SandboxStatus.Running], TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(500), ct);
            Console.WriteLine(info.CanonicalId);
            foreach (var port in info.ExposedPorts)
            {
                await Console.Error.WriteLineAsync($"port {port}: {TensorlakeClient.PortUrl(info.IngressEndpoint ?? "http://localhost", info.CanonicalId, port)}");
            }

            return 0;
        });
        return command;
    }

    private static Command Exec()
    {
        var sandbox = SandboxArgument();
        var argv = new Argument<string[]>("command") { Description = "Program and arguments (use 'bash -c \"...\"' for a shell line)", Arity = ArgumentArity.OneOrMore };
        var env = new Option<string[]>("--env") { Description = "KEY=VALUE for this process (repeatable)" };
        var workdir = new Option<string?>("--workdir") { Description = "Working directory" };
        var user = new Option<string?>("--user") { Description = "User name, uid or uid:gid" };
        var timeout = new Option<double?>("--timeout") { Description = "Seconds before the process is killed" };
        var command = new Command("exec", "Run a command in a sandbox, streaming its output; exits with its exit code") { sandbox, argv, env, workdir, user, timeout };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var proxy = await SandboxClientFactory.ProxyAsync(client, parse.GetValue(sandbox)!, ct);
            var args = parse.GetValue(argv)!;
            var request = new RunProcessRequest
            {
                Command = args[0],
                Args = [.. args.Skip(1)],
                Env = ParseEnv(parse.GetValue(env) ?? []),
                WorkingDir = parse.GetValue(workdir),
                User = parse.GetValue(user),
                Timeout = parse.GetValue(timeout),
            };
            var exit = 1;
            await foreach (var frame in proxy.RunStreamingAsync(request, ct))
            {
                if (frame.IsOutput)
                {
                    await (frame.Stream == "stderr" ? Console.Error : Console.Out).WriteLineAsync(frame.Line);
                }
                else if (frame.IsExit)
                {
                    exit = frame.ExitCode ?? 128 + frame.Signal!.Value;
                }
            }

            return exit;
        });
        return command;
    }

    private static Command Copy()
    {
        var source = new Argument<string>("source") { Description = "A local path or SANDBOX:/path" };
        var destination = new Argument<string>("destination") { Description = "A local path or SANDBOX:/path" };
        var command = new Command("cp", "Copy one file into or out of a sandbox") { source, destination };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var (from, to) = (parse.GetValue(source)!, parse.GetValue(destination)!);
            if (SplitRemote(from) is { } remoteFrom && SplitRemote(to) is null)
            {
                var proxy = await SandboxClientFactory.ProxyAsync(client, remoteFrom.Sandbox, ct);
                await File.WriteAllBytesAsync(to, await proxy.ReadFileAsync(remoteFrom.Path, ct), ct);
            }
            else if (SplitRemote(to) is { } remoteTo && SplitRemote(from) is null)
            {
                if (!File.Exists(from))
                {
                    throw new CliException($"'{from}' is not a file; cp copies single files (tar a directory first).");
                }

                var proxy = await SandboxClientFactory.ProxyAsync(client, remoteTo.Sandbox, ct);
                await proxy.WriteFileAsync(remoteTo.Path, await File.ReadAllBytesAsync(from, ct), ct);
            }
            else
            {
                throw new CliException("exactly one side must be SANDBOX:/path, e.g. 'hands sandbox cp notes.txt my-box:/workspace/notes.txt'.");
            }

            return 0;
        });
        return command;
    }

    private static Command Logs()
    {
        var sandbox = SandboxArgument();
        var process = new Argument<string>("process") { Description = "PID or process name" };
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep streaming until the process exits" };
        var command = new Command("logs", "Print a process's captured output") { sandbox, process, follow };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var proxy = await SandboxClientFactory.ProxyAsync(client, parse.GetValue(sandbox)!, ct);
            if (parse.GetValue(follow))
            {
                await foreach (var line in proxy.FollowOutputAsync(parse.GetValue(process)!, cancellationToken: ct))
                {
                    Console.WriteLine(line.Line);
                }
            }
            else
            {
                foreach (var line in (await proxy.GetOutputAsync(parse.GetValue(process)!, cancellationToken: ct)).Lines)
                {
                    Console.WriteLine(line);
                }
            }

            return 0;
        });
        return command;
    }

    private static Command Checkpoint()
    {
        var sandbox = SandboxArgument();
        var memory = new Option<bool>("--memory") { Description = "Memory and processes too (CRIU), not just files" };
        var command = new Command("checkpoint", "Snapshot a sandbox and print the snapshot id") { sandbox, memory };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            Console.WriteLine(await SnapshotAsync(client, parse.GetValue(sandbox)!, parse.GetValue(memory), ct));
            return 0;
        });
        return command;
    }

    private static async Task<string> SnapshotAsync(TensorlakeClient client, string sandbox, bool memory, CancellationToken ct)
    {
        await Console.Error.WriteLineAsync($"taking a {(memory ? "memory" : "filesystem")} snapshot of {sandbox}...");
        var started = await client.SnapshotAsync(sandbox, memory ? SnapshotType.Memory : SnapshotType.Filesystem, ct);
        var done = started.Status is SnapshotStatus.LocalReady or SnapshotStatus.Completed ? null
            : await client.WaitForSnapshotAsync(started.SnapshotId, TimeSpan.FromMinutes(5), TimeSpan.FromSeconds(1), ct);
        return done?.CanonicalId ?? started.SnapshotId;
    }

    private static Command Fork()
    {
        var source = new Argument<string>("source") { Description = "A snapshot id, or a sandbox to checkpoint first" };
        var count = new Option<int>("--count", "-n") { Description = "How many children", DefaultValueFactory = _ => 1 };
        var memory = new Option<bool>("--memory") { Description = "When checkpointing a sandbox: memory and processes too" };
        var command = new Command("fork", "Create N sandboxes from a snapshot (taking one first when given a sandbox); prints their ids") { source, count, memory };
        command.SetAction(async (parse, ct) =>
        {
            var n = parse.GetValue(count);
            if (n is < 1 or > 64)
            {
                throw new CliException("--count must be between 1 and 64.");
            }

            using var client = SandboxClientFactory.Create();
            var from = parse.GetValue(source)!;
            var snapshots = await client.ListSnapshotsAsync(ct);
            var snapshotId = snapshots.Any(s => s.CanonicalId == from) ? from : await SnapshotAsync(client, from, parse.GetValue(memory), ct);
            await Console.Error.WriteLineAsync($"forking {n} sandbox(es) from snapshot {snapshotId}...");
            var children = await Task.WhenAll(Enumerable.Range(0, n).Select(_ => client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshotId }, ct)));
            foreach (var child in children)
            {
                Console.WriteLine(child.CanonicalId);
            }

            return 0;
        });
        return command;
    }

    private static Command Suspend()
    {
        var sandbox = SandboxArgument();
        var hibernate = new Option<bool>("--hibernate") { Description = "Local engine: go straight to disk (CRIU) instead of freezing in RAM" };
        var command = new Command("suspend", "Suspend a named sandbox (it wakes on the next request or on resume)") { sandbox, hibernate };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var changed = await client.SuspendAsync(parse.GetValue(sandbox)!, parse.GetValue(hibernate), ct);
            var info = await client.WaitForStatusAsync(parse.GetValue(sandbox)!, [SandboxStatus.Suspended], TimeSpan.FromMinutes(5), TimeSpan.FromMilliseconds(500), ct);
            Console.WriteLine(changed ? $"{info.CanonicalId} suspended{(info.SuspendTier is { } t ? $" ({t})" : "")}" : $"{info.CanonicalId} was already suspended");
            return 0;
        });
        return command;
    }

    private static Command Resume()
    {
        var sandbox = SandboxArgument();
        var command = new Command("resume", "Resume a suspended sandbox") { sandbox };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var changed = await client.ResumeAsync(parse.GetValue(sandbox)!, ct);
            var info = await client.WaitForStatusAsync(parse.GetValue(sandbox)!, [SandboxStatus.Running], TimeSpan.FromMinutes(5), TimeSpan.FromMilliseconds(500), ct);
            Console.WriteLine(changed ? $"{info.CanonicalId} running" : $"{info.CanonicalId} was already running");
            return 0;
        });
        return command;
    }

    private static Command Resize()
    {
        var sandbox = SandboxArgument();
        var cpus = new Option<int?>("--cpus") { Description = "Whole CPUs" };
        var memory = new Option<int?>("--memory") { Description = "Memory in MiB" };
        var disk = new Option<int?>("--disk") { Description = "Disk in MiB (it only grows)" };
        var noWait = new Option<bool>("--no-wait") { Description = "Print the answer without waiting for a pending resize to settle" };
        var command = new Command("resize", "Change a live sandbox's CPUs, memory or disk (tl sbx update's resources)") { sandbox, cpus, memory, disk, noWait };
        command.SetAction(async (parse, ct) =>
        {
            var (c, m, d) = (parse.GetValue(cpus), parse.GetValue(memory), parse.GetValue(disk));
            if (c is null && m is null && d is null)
            {
                throw new CliException("nothing to resize: give --cpus, --memory and/or --disk");
            }

            using var client = SandboxClientFactory.Create();
            var info = await client.ResizeAsync(parse.GetValue(sandbox)!, c, m, d, ct);
            if (info.ResourceResize is { Status: "pending" } pending && !parse.GetValue(noWait))
            {
                Console.WriteLine($"resize {pending.Generation} pending...");
                info = await client.WaitForResourceResizeAsync(info.CanonicalId, pending.Generation, TimeSpan.FromMinutes(5), cancellationToken: ct);
            }

            var r = info.Resources;
            var now = $"{r?.Cpus} CPUs, {r?.MemoryMb} MiB memory, {r?.Disk} MiB disk";
            switch (info.ResourceResize?.Status)
            {
                case "succeeded":
                    Console.WriteLine($"{info.CanonicalId} resized: {now}");
                    return 0;
                case "failed":
                    Console.Error.WriteLine($"hands: resize of {info.CanonicalId} failed: {info.ResourceResize.ErrorMessage ?? "no reason given"} (in force: {now})");
                    return 1;
                default:
                    Console.WriteLine($"{info.CanonicalId}: resize {info.ResourceResize?.Status ?? "not reported"} (in force: {now})");
                    return 0;
            }
        });
        return command;
    }

    private static Command Expose()
    {
        var sandbox = SandboxArgument();
        var ports = new Argument<int[]>("ports") { Description = "Ports to expose", Arity = ArgumentArity.OneOrMore };
        var open = new Option<bool>("--public") { Description = "No API key needed for exposed ports" };
        var remove = new Option<bool>("--remove") { Description = "Unexpose these ports instead" };
        var tcp = new Option<bool>("--tcp") { Description = "Local engine: also open a loopback TCP relay per port, for protocols other than HTTP" };
        var command = new Command("expose", "Expose ports through the ingress and print their URLs") { sandbox, ports, open, remove, tcp };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var info = await client.GetAsync(parse.GetValue(sandbox)!, ct);
            var given = parse.GetValue(ports)!;
            var merged = parse.GetValue(remove) ? info.ExposedPorts.Except(given).ToList() : info.ExposedPorts.Union(given).ToList();
            info = await client.UpdateAsync(info.CanonicalId, new UpdateSandboxRequest
            {
                ExposedPorts = merged,
                AllowUnauthenticatedAccess = parse.GetValue(open) ? true : merged.Count == 0 ? false : null,
            }, ct);
            foreach (var port in info.ExposedPorts)
            {
                Console.WriteLine($"{port}\t{TensorlakeClient.PortUrl(info.IngressEndpoint ?? "http://localhost", info.CanonicalId, port)}\t{(info.AllowUnauthenticatedAccess ? "public" : "needs API key")}");
            }

            if (parse.GetValue(tcp) && !parse.GetValue(remove))
            {
                foreach (var port in given)
                {
                    Console.WriteLine($"{port}\ttcp://{await client.OpenTcpRelayAsync(info.CanonicalId, port, ct)}\tTCP relay (loopback)");
                }
            }

            return 0;
        });
        return command;
    }

    private static Command Remove()
    {
        var sandboxes = new Argument<string[]>("sandboxes") { Description = "Sandbox ids or names", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Terminate sandboxes") { sandboxes };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            foreach (var id in parse.GetValue(sandboxes)!)
            {
                await client.DeleteAsync(id, ct);
                Console.WriteLine($"{id} terminated");
            }

            return 0;
        });
        return command;
    }

    private static Dictionary<string, string>? ParseEnv(string[] pairs)
    {
        if (pairs.Length == 0)
        {
            return null;
        }

        var env = new Dictionary<string, string>();
        foreach (var pair in pairs)
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new CliException($"--env '{pair}': expected KEY=VALUE.");
            }

            env[pair[..eq]] = pair[(eq + 1)..];
        }

        return env;
    }

    private static (string Sandbox, string Path)? SplitRemote(string value)
    {
        var colon = value.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && value.Length > colon + 1 && value[colon + 1] == '/' && !value[..colon].Contains('/', StringComparison.Ordinal)
            ? (value[..colon], value[(colon + 1)..])
            : null;
    }
}
