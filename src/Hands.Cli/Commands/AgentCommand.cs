using System.CommandLine;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary><c>hands agent</c>: agents (model, system prompt, tools).</summary>
internal static class AgentCommand
{
    public static Command Create()
    {
        var command = new Command("agent", "Create and inspect agents");

        var name = new Argument<string>("name") { Description = "Agent name" };
        var model = new Option<string>("--model")
        {
            Description = "Model id; the local control plane plays 'scripted:NAME' scenarios (built in: demo, hello, toolbox, permissions, custom-tool)",
            DefaultValueFactory = _ => "scripted:demo",
        };
        var system = new Option<string?>("--system") { Description = "System prompt" };
        var tools = new Option<string>("--tools")
        {
            Description = "'builtin' (the six sandbox tools, always allowed), 'ask' (the same, each call needs confirmation), 'none', or a JSON file holding a tools array",
            DefaultValueFactory = _ => "builtin",
        };
        var create = new Command("create", "Create an agent (prints its id)") { name, model, system, tools };
        create.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var agent = await client.Agents.CreateAsync(new CreateAgentRequest
            {
                Name = parse.GetValue(name)!,
                Model = JsonSerializer.SerializeToElement(parse.GetValue(model)!, ProtocolJsonContext.Default.String),
                System = parse.GetValue(system),
                Tools = ParseTools(parse.GetValue(tools)!),
            }, ct);
            Console.WriteLine(agent.Id);
            return 0;
        });

        var list = new Command("list", "List agents");
        list.SetAction(async (parse, ct) =>
        {
            using var client = CliContext.CreateClient(parse);
            var page = await client.Agents.ListAsync(limit: 100, cancellationToken: ct);
            var table = new Table().AddColumns("id", "name", "model", "version");
            foreach (var a in page.Data)
            {
                table.AddRow(Markup.Escape(a.Id), Markup.Escape(a.Name), Markup.Escape(a.ModelId), a.Version.ToString(System.Globalization.CultureInfo.InvariantCulture));
            }

            Output.Table(table);
            return 0;
        });

        command.Subcommands.Add(create);
        command.Subcommands.Add(list);
        return command;
    }

    internal static List<JsonElement> ParseTools(string value)
    {
        switch (value)
        {
            case "builtin":
                return [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement.Clone()];
            case "ask":
                return [JsonDocument.Parse("""{"type":"agent_toolset_20260401","default_config":{"permission_policy":{"type":"always_ask"}}}""").RootElement.Clone()];
            case "none":
                return [];
        }

        if (!File.Exists(value))
        {
            throw new CliException($"--tools: '{value}' is not 'builtin', 'ask', 'none' or an existing JSON file.");
        }

        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(value));
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
            {
                throw new CliException($"--tools: {value} must hold a JSON array of tool definitions.");
            }

            return doc.RootElement.EnumerateArray().Select(e => e.Clone()).ToList();
        }
        catch (JsonException ex)
        {
            throw new CliException($"--tools: {value} is not valid JSON: {ex.Message}");
        }
    }
}
