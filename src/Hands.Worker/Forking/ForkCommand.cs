using System.CommandLine;
using Hands.Forking;
using Hands.Sandboxes.Models;
using Hands.Worker.Hosting;

namespace Hands.Worker.Forking;

/// <summary>
/// <c>hands-fork</c> (the worker binary under that name, or <c>hands-worker fork</c>): fork-and-explore this sandbox
/// from bash. Needs the fork key in the environment, which the orchestrator passes to bash only with
/// <c>HANDS_FORK_ACCESS=bash</c>. Exit 0 when a branch passed, 1 when none did, 2 on bad usage or a refused fork.
/// </summary>
internal static class ForkCommand
{
    public static Command Create()
    {
        var branches = new Argument<string[]>("branch") { Description = "Candidates as NAME=COMMAND (each runs with sh -c in its own fork)", Arity = ArgumentArity.OneOrMore };
        var memory = new Option<bool>("--memory") { Description = "Checkpoint memory and processes too; the default checkpoints files only" };
        var parallel = new Option<int?>("--parallel") { Description = "At most K children at once (default: all)" };
        var timeout = new Option<double>("--timeout") { Description = "Seconds a branch may run before it is killed", DefaultValueFactory = _ => 300 };
        var workdir = new Option<string?>("--workdir") { Description = "Where branches run and what --adopt brings back (default: the current directory)" };
        var adopt = new Option<bool>("--adopt") { Description = "Copy the winner's changed files under --workdir back into this sandbox" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var command = new Command("fork", "Fork this sandbox N ways from one checkpoint, run a candidate in each, report the best") { branches, memory, parallel, timeout, workdir, adopt, json };
        command.SetAction(async (parse, ct) =>
        {
            var access = ForkAccess.FromEnvironment()
                ?? throw new UsageException($"no fork access here: {ForkAccess.KeyVariable}, {ForkAccess.ApiUrlVariable} and {ForkAccess.SandboxVariable} are not set (the orchestrator sets them with HANDS_FORK_ACCESS=bash)");
            var dir = Path.GetFullPath(parse.GetValue(workdir) ?? Environment.CurrentDirectory);
            List<ForkBranch> parsed;
            try
            {
                parsed = [.. parse.GetValue(branches)!.Select(ForkBranch.Parse).Select(b => b with { WorkingDirectory = dir })];
            }
            catch (FormatException ex)
            {
                throw new UsageException(ex.Message);
            }

            var options = new ForkExploreOptions
            {
                SnapshotType = parse.GetValue(memory) ? SnapshotType.Memory : SnapshotType.Filesystem,
                MaxParallelism = parse.GetValue(parallel),
                BranchTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                Adopt = parse.GetValue(adopt),
                AdoptDirectory = dir,
                ChildNamePrefix = access.ChildNamePrefix,
                OnProgress = line => Console.Error.WriteLine("hands-fork: " + line),
            };
            using var client = access.CreateClient();
            ForkExploreResult result;
            try
            {
                result = await new ForkExplorer(client).ExploreAsync(access.SandboxId, parsed, options, ct);
            }
            catch (Exception ex) when (ex is ForkExploreException or ArgumentException)
            {
                throw new UsageException(ex.Message);
            }

            Console.Write(parse.GetValue(json) ? ForkReport.ToJson(result) + "\n" : ForkReport.ToText(result));
            return result.Winner is null ? 1 : 0;
        });
        return command;
    }
}
