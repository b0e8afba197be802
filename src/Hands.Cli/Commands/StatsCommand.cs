using System.CommandLine;
using Hands.Cli.Configuration;

namespace Hands.Cli.Commands;

/// <summary><c>hands stats</c>: the environment's work queue at a glance.</summary>
internal static class StatsCommand
{
    public static Command Create()
    {
        var environment = new Option<string?>("--environment") { Description = "Environment (default: $ANTHROPIC_ENVIRONMENT_ID)" };
        var command = new Command("stats", "Show an environment's work queue: depth, pending, workers polling") { environment };
        command.SetAction(async (parse, ct) =>
        {
            var environmentId = parse.GetValue(environment) ?? Settings.Require("ANTHROPIC_ENVIRONMENT_ID", "the environment whose queue to show (or pass --environment)");
            // Either key reads the stats; the environment key is the one an orchestrator host has.
            using var client = Settings.Get("ANTHROPIC_ENVIRONMENT_KEY") is { } environmentKey
                ? OrchestratorSettings.EnvironmentClient(Settings.Url("ANTHROPIC_BASE_URL", CliContext.LocalDefault), environmentKey)
                : CliContext.CreateClient(parse);
            var stats = await client.Work.StatsAsync(environmentId, ct);
            Console.WriteLine($"environment      {environmentId}");
            Console.WriteLine($"depth            {stats.Depth}");
            Console.WriteLine($"pending          {stats.Pending}");
            Console.WriteLine($"workers_polling  {stats.WorkersPolling}");
            if (stats.OldestQueuedAt is { } oldest)
            {
                Console.WriteLine($"oldest queued    {oldest}");
            }

            return 0;
        });
        return command;
    }
}
