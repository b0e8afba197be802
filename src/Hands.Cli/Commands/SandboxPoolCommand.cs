using System.CommandLine;
using System.Globalization;
using Hands.Sandboxes.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary><c>hands sandbox pool create|list|get|update|delete|claim</c>: warm pools on any Tensorlake API (<c>tl sbx pool</c>'s verbs).</summary>
internal static class SandboxPoolCommand
{
    public static Command Create()
    {
        var command = new Command("pool", "Warm pools: booted sandboxes kept ready, handed out by a claim");
        command.Subcommands.Add(CreatePool());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Get());
        command.Subcommands.Add(Update());
        command.Subcommands.Add(Delete());
        command.Subcommands.Add(Claim());
        return command;
    }

    private static Argument<string> PoolArgument() => new("pool") { Description = "Pool id" };

    /// <summary>The flags of a pool's configuration, shared by create and update (a full replace).</summary>
    private sealed class ConfigurationOptions
    {
        public Option<string?> Image { get; } = new("--image") { Description = "Image (local engine: host, debian, or a built image; default: the provider's)" };
        public Option<double?> Cpus { get; } = new("--cpus") { Description = "CPUs per sandbox (default 1)" };
        public Option<int?> Memory { get; } = new("--memory") { Description = "Memory per sandbox in MB (default 1024)" };
        public Option<int?> Disk { get; } = new("--disk") { Description = "Disk per sandbox in MB (ephemeral_disk_mb; default: the provider's)" };
        public Option<int> Timeout { get; } = new("--timeout") { Description = "Idle seconds a claimed sandbox gets before it suspends, counted from its claim (default 0 = none)" };
        public Option<string[]> Entrypoint { get; } = new("--entrypoint") { Description = "Program and arguments each sandbox starts with (repeat for each word)", AllowMultipleArgumentsPerToken = true };
        public Option<int?> Max { get; } = new("--max") { Description = "Most sandboxes alive at once, warm and claimed (default: no limit)" };
        public Option<int?> Warm { get; } = new("--warm") { Description = "Booted sandboxes to keep ready (default 0)" };
        public Option<bool> NoInternet { get; } = new("--no-internet") { Description = "Block all outbound traffic" };
        public Option<string[]> AllowOut { get; } = new("--allow-out") { Description = "Only these destinations (IP, CIDR or host; repeatable)", AllowMultipleArgumentsPerToken = true };
        public Option<string[]> DenyOut { get; } = new("--deny-out") { Description = "Never these destinations (repeatable)", AllowMultipleArgumentsPerToken = true };

        public void AddTo(Command command)
        {
            foreach (var option in new Option[] { Image, Cpus, Memory, Disk, Timeout, Entrypoint, Max, Warm, NoInternet, AllowOut, DenyOut })
            {
                command.Options.Add(option);
            }
        }

        public SandboxPoolRequest Read(ParseResult parse)
        {
            var allow = parse.GetValue(AllowOut) ?? [];
            var deny = parse.GetValue(DenyOut) ?? [];
            return new SandboxPoolRequest
            {
                Image = parse.GetValue(Image),
                Resources = new SandboxPoolResources { Cpus = parse.GetValue(Cpus) ?? 1.0, MemoryMb = parse.GetValue(Memory) ?? 1024, EphemeralDiskMb = parse.GetValue(Disk) },
                TimeoutSecs = parse.GetValue(Timeout),
                Entrypoint = parse.GetValue(Entrypoint) is { Length: > 0 } entrypoint ? [.. entrypoint] : null,
                MaxContainers = parse.GetValue(Max),
                WarmContainers = parse.GetValue(Warm),
                Network = parse.GetValue(NoInternet) || allow.Length > 0 || deny.Length > 0
                    ? new NetworkPolicy { AllowInternetAccess = !parse.GetValue(NoInternet), AllowOut = [.. allow], DenyOut = [.. deny] }
                    : null,
            };
        }
    }

    private static Command CreatePool()
    {
        var configuration = new ConfigurationOptions();
        var command = new Command("create", "Create a warm pool and print its id; its sandboxes boot in the background");
        configuration.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var created = await client.CreatePoolAsync(configuration.Read(parse), ct);
            Console.WriteLine(created.PoolId);
            return 0;
        });
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "List pools");
        command.Aliases.Add("ls");
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var table = new Table().AddColumns("ID", "IMAGE", "CPUS", "MEMORY", "WARM", "MAX", "TIMEOUT", "CREATED");
            foreach (var pool in await client.ListPoolsAsync(ct))
            {
                table.AddRow(Markup.Escape(pool.CanonicalId), Markup.Escape(pool.Image ?? "-"),
                    pool.Resources?.Cpus?.ToString(CultureInfo.InvariantCulture) ?? "-", pool.Resources?.MemoryMb?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    (pool.WarmContainers ?? 0).ToString(CultureInfo.InvariantCulture), pool.MaxContainers?.ToString(CultureInfo.InvariantCulture) ?? "-",
                    pool.TimeoutSecs == 0 ? "none" : pool.TimeoutSecs.ToString(CultureInfo.InvariantCulture) + " s", Created(pool.CreatedAt));
            }

            Output.Table(table);
            return 0;
        });
        return command;
    }

    private static Command Get()
    {
        var pool = PoolArgument();
        var command = new Command("get", "Show a pool's configuration and its containers (warm ones have no sandbox)") { pool };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var info = await client.GetPoolAsync(parse.GetValue(pool)!, ct);
            var network = info.EffectiveNetwork is { } n
                ? $"internet {(n.AllowInternetAccess ? "on" : "off")}{(n.AllowOut.Count > 0 ? $", allow {string.Join(',', n.AllowOut)}" : "")}{(n.DenyOut.Count > 0 ? $", deny {string.Join(',', n.DenyOut)}" : "")}"
                : "unrestricted";
            Console.WriteLine($"pool        {info.CanonicalId}");
            Console.WriteLine($"image       {info.Image}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"resources   {info.Resources?.Cpus} cpu, {info.Resources?.MemoryMb} MB memory, {info.Resources?.Disk} MB disk"));
            Console.WriteLine($"warm        {info.WarmContainers ?? 0} (max {info.MaxContainers?.ToString(CultureInfo.InvariantCulture) ?? "unbounded"})");
            Console.WriteLine($"timeout     {(info.TimeoutSecs == 0 ? "none" : $"{info.TimeoutSecs} s after the claim")}");
            Console.WriteLine($"entrypoint  {(info.Entrypoint is { Count: > 0 } e ? string.Join(' ', e) : "-")}");
            Console.WriteLine($"network     {network}");
            var table = new Table().AddColumns("CONTAINER", "STATE", "SANDBOX", "EXECUTOR");
            foreach (var container in info.Containers ?? [])
            {
                table.AddRow(Markup.Escape(container.Id), Markup.Escape(container.State), Markup.Escape(container.SandboxId ?? "- (warm)"), Markup.Escape(container.ExecutorId ?? "-"));
            }

            Output.Table(table);
            return 0;
        });
        return command;
    }

    private static Command Update()
    {
        var pool = PoolArgument();
        var configuration = new ConfigurationOptions();
        var clear = new Option<bool>("--clear-network") { Description = "Remove the egress policy (unrestricted); without any network flag the current policy is kept" };
        var command = new Command("update", "Replace a pool's whole configuration (unset flags go back to their defaults); warm sandboxes are recycled onto it") { pool, clear };
        configuration.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var request = configuration.Read(parse);
            if (parse.GetValue(clear))
            {
                if (request.Network is not null)
                {
                    throw new CliException("--clear-network removes the policy; it cannot be combined with --no-internet, --allow-out or --deny-out.");
                }

                request.ClearNetwork = true;
            }

            using var client = SandboxClientFactory.Create();
            var info = await client.UpdatePoolAsync(parse.GetValue(pool)!, request, ct);
            Console.WriteLine($"{info.CanonicalId} updated: {info.WarmContainers ?? 0} warm, max {info.MaxContainers?.ToString(CultureInfo.InvariantCulture) ?? "unbounded"}");
            return 0;
        });
        return command;
    }

    private static Command Delete()
    {
        var pools = new Argument<string[]>("pools") { Description = "Pool ids", Arity = ArgumentArity.OneOrMore };
        var command = new Command("delete", "Delete pools and their warm sandboxes (refused while sandboxes claimed from one live)") { pools };
        command.Aliases.Add("rm");
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            foreach (var id in parse.GetValue(pools)!)
            {
                await client.DeletePoolAsync(id, ct);
                Console.WriteLine($"{id} deleted");
            }

            return 0;
        });
        return command;
    }

    private static Command Claim()
    {
        var pool = PoolArgument();
        var name = new Option<string?>("--name") { Description = "Name the claimed sandbox (a claim takes none: it is named right after)" };
        var command = new Command("claim", "Take a sandbox from a pool (a warm one, or one booted for the claim) and print its id") { pool, name };
        command.SetAction(async (parse, ct) =>
        {
            using var client = SandboxClientFactory.Create();
            var claimed = await client.ClaimAsync(parse.GetValue(pool)!, ct);
            if (claimed.Status is SandboxStatus.Timeout or SandboxStatus.Terminated)
            {
                throw new CliException($"the claim answered {claimed.Status}{(claimed.PendingReason is { } reason ? $" ({reason})" : "")}; nothing was claimed");
            }

            if (parse.GetValue(name) is { } wanted)
            {
                try
                {
                    await client.UpdateAsync(claimed.CanonicalId, new UpdateSandboxRequest { Name = wanted }, ct);
                }
                catch (Hands.Sandboxes.Client.TensorlakeException)
                {
                    // Not left behind unnamed: it is no use to anyone who asked for a name.
                    await client.DeleteAsync(claimed.CanonicalId, CancellationToken.None);
                    throw;
                }
            }

            var info = claimed.Status == SandboxStatus.Running ? null
                : await client.WaitForStatusAsync(claimed.CanonicalId, [SandboxStatus.Running], TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(500), ct);
            Console.WriteLine(info?.CanonicalId ?? claimed.CanonicalId);
            return 0;
        });
        return command;
    }

    private static string Created(DateTimeOffset? at) => at?.ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) ?? "-";
}
