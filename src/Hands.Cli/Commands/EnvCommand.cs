using System.CommandLine;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary><c>hands env</c>: self-hosted environments and their keys.</summary>
internal static class EnvCommand
{
    public static Command Create()
    {
        var command = new Command("env", "Create and inspect self-hosted environments, and mint environment keys");

        var name = new Argument<string>("name") { Description = "Environment name" };
        var description = new Option<string?>("--description") { Description = "Free-text description" };
        var create = new Command("create", "Create a self_hosted environment (prints its id)") { name, description };
        create.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var env = await client.Environments.CreateAsync(new CreateEnvironmentRequest
            {
                Name = parse.GetValue(name)!,
                Description = parse.GetValue(description),
                Config = System.Text.Json.JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement,
            }, ct);
            Console.WriteLine(env.Id);
            return 0;
        });

        var list = new Command("list", "List environments");
        list.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var page = await client.Environments.ListAsync(limit: 100, cancellationToken: ct);
            var table = new Table().AddColumns("id", "name", "config", "created");
            foreach (var e in page.Data)
            {
                table.AddRow(Markup.Escape(e.Id), Markup.Escape(e.Name), e.IsSelfHosted ? "self_hosted" : "cloud", Markup.Escape(e.CreatedAt));
            }

            Output.Table(table);
            return 0;
        });

        var envId = new Argument<string>("environment-id") { Description = "Environment id (env_...)" };
        var key = new Command("key", "Mint an environment key for a worker (shown once; store it as ANTHROPIC_ENVIRONMENT_KEY)") { envId };
        key.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var minted = await client.Environments.CreateKeyAsync(parse.GetValue(envId)!, ct);
            Console.Error.WriteLine($"environment key {minted.Id} for {minted.EnvironmentId} (shown only now; stored hashed):");
            Console.WriteLine(minted.Key);
            return 0;
        });

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        command.Subcommands.Add(key);
        return command;
    }
}
