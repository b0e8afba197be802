using System.CommandLine;
using Hands.Forking;
using Hands.Sandboxes.Models;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands fork-explore</c>: checkpoint a sandbox, run each <c>--branch</c> in its own fork, judge by exit code, show a
/// live table and the winner; optionally adopt the winner's files into the parent. Exit code 0 when a branch passed.
/// </summary>
internal static class ForkExploreCommand
{
    public static Command Create()
    {
        var sandbox = new Option<string>("--sandbox") { Description = "The parent sandbox (id or name)", Required = true };
        var branches = new Option<string[]>("--branch") { Description = "A candidate as NAME=COMMAND (repeatable; run with sh -c in its own fork)", AllowMultipleArgumentsPerToken = false };
        var memory = new Option<bool>("--memory") { Description = "Checkpoint memory and processes too (CRIU); the default checkpoints files only" };
        var parallel = new Option<int?>("--parallel") { Description = "At most K children at once (default: all)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a branch may run before it is killed", DefaultValueFactory = _ => 600 };
        var workdir = new Option<string?>("--workdir") { Description = "Where the branch commands run (default: the sandbox daemon's)" };
        var keep = new Option<bool>("--keep") { Description = "Keep the children and the snapshot (default: delete them)" };
        var adopt = new Option<bool>("--adopt") { Description = "Copy the winner's changed files under --adopt-dir back into the parent" };
        var adoptDir = new Option<string>("--adopt-dir") { Description = "The tree --adopt brings back", DefaultValueFactory = _ => "/workspace" };
        var command = new Command("fork-explore", "Fork a sandbox N ways from one checkpoint, run a candidate in each, keep the best")
        {
            sandbox, branches, memory, parallel, timeout, workdir, keep, adopt, adoptDir,
        };
        command.SetAction(async (parse, ct) =>
        {
            List<ForkBranch> parsed;
            try
            {
                parsed = [.. (parse.GetValue(branches) ?? []).Select(ForkBranch.Parse).Select(b => b with { WorkingDirectory = parse.GetValue(workdir) })];
            }
            catch (FormatException ex)
            {
                throw new CliException(ex.Message);
            }

            if (parsed.Count == 0)
            {
                throw new CliException("give at least one --branch NAME=COMMAND");
            }

            var options = new ForkExploreOptions
            {
                SnapshotType = parse.GetValue(memory) ? SnapshotType.Memory : SnapshotType.Filesystem,
                MaxParallelism = parse.GetValue(parallel),
                BranchTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                Keep = parse.GetValue(keep),
                Adopt = parse.GetValue(adopt),
                AdoptDirectory = parse.GetValue(adoptDir)!,
            };
            using var client = SandboxClientFactory.Create();
            var result = await Run(client, parse.GetValue(sandbox)!, parsed, options, ct);
            return result.Winner is null ? 1 : 0;
        });
        return command;
    }

    /// <summary>Runs with the live table, turning the library's refusals into CLI errors.</summary>
    public static async Task<ForkExploreResult> Run(Hands.Sandboxes.Client.TensorlakeClient client, string parent, IReadOnlyList<ForkBranch> branches, ForkExploreOptions options, CancellationToken ct)
    {
        try
        {
            return await ForkTable.RunAsync(new ForkExplorer(client), parent, branches, options, ct);
        }
        catch (Exception ex) when (ex is ForkExploreException or ArgumentException)
        {
            throw new CliException(ex.Message);
        }
    }
}
