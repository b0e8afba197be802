using System.Globalization;
using Hands.Bench;

// Usage: dotnet run -c Release --project bench/Hands.Bench [-- control-plane|worker|engine|orchestrator|fork ...] [--iterations N]
// The engine suite needs root, runc, CRIU and artifacts/hands-sandboxd (scripts/bench.sh prepares them); it caps N at 30.
// The worker suite needs artifacts/hands-worker (NativeAOT) and tests/conformance/node_modules: scripts/bench.sh prepares both.
var iterations = 200;
var suites = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--iterations" && i + 1 < args.Length)
    {
        iterations = Math.Clamp(int.Parse(args[++i], CultureInfo.InvariantCulture), 10, 5000);
    }
    else
    {
        suites.Add(args[i]);
    }
}

if (suites.Count == 0)
{
    suites.AddRange(["control-plane", "worker", "engine", "orchestrator", "fork"]);
}

var output = new List<string>
{
    $"# Hands benchmarks — {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}",
    "",
};
foreach (var suite in suites)
{
    switch (suite)
    {
        case "control-plane":
            Console.Error.WriteLine($"control-plane: {iterations} iterations per measurement...");
            output.Add("## Control plane (loopback HTTP, SQLite WAL synchronous=FULL)");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await ControlPlaneBench.RunAsync(iterations));
            output.Add("");
            break;
        case "worker":
            Console.Error.WriteLine("worker: start-up and per-call overhead, hands-worker vs the official TypeScript worker...");
            output.Add("## Worker (hands-worker NativeAOT vs official TypeScript worker of @anthropic-ai/sdk 1.14.0, same control plane)");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | target / note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await WorkerBench.RunAsync(iterations, RepoRoot()));
            output.Add("");
            break;
        case "engine" when OperatingSystem.IsLinux():
            Console.Error.WriteLine("engine: real runc sandboxes, snapshots, suspend tiers, ingress wake and forks...");
            output.Add("## Local sandbox engine (runc 1.1.5, overlayfs, own netns per sandbox, CRIU 4.2; image 'host')");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | target / note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await EngineBench.RunAsync(Math.Min(iterations, 30), RepoRoot()));
            output.Add("");
            break;
        case "orchestrator" when OperatingSystem.IsLinux():
            Console.Error.WriteLine("orchestrator: sessions through real sandboxes per mode, then a burst of 50...");
            output.Add("## Orchestrator (local control plane + engine, hands-worker in each session's sandbox)");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | target / note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await OrchestratorBench.RunAsync(Math.Min(iterations, 20), RepoRoot()));
            output.Add("");
            break;
        case "fork" when OperatingSystem.IsLinux():
            Console.Error.WriteLine("fork: fork-and-explore from a memory snapshot, N = 1, 2, 4, 8, parallel and sequential...");
            output.Add("## Fork-and-explore (Hands.Forking on the local engine; memory checkpoint of a parent serving an in-memory counter)");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | target / note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await ForkBench.RunAsync(Math.Min(iterations, 20), RepoRoot()));
            output.Add("");
            break;
        default:
            Console.Error.WriteLine($"unknown suite '{suite}'; suites: control-plane, worker, engine, orchestrator, fork");
            return 2;
    }
}

foreach (var line in output)
{
    Console.WriteLine(line);
}

var dir = Path.Combine(RepoRoot(), "bench", "results");
Directory.CreateDirectory(dir);
var file = Path.Combine(dir, $"bench-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.md");
await File.WriteAllLinesAsync(file, output);
Console.Error.WriteLine($"written to {file}");
return 0;

static string RepoRoot()
{
    var dir = new DirectoryInfo(AppContext.BaseDirectory);
    while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hands.slnx")))
    {
        dir = dir.Parent;
    }

    return dir?.FullName ?? Directory.GetCurrentDirectory();
}
