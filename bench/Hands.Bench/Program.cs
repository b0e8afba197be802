using System.Globalization;
using Hands.Bench;

// Usage: dotnet run -c Release --project bench/Hands.Bench [-- control-plane|worker|engine|pool|orchestrator|fork|fork-scaling|tracing ...] [--iterations N] [--cores K]
// ("fork-scaling" is not in the default set: fork N = 1, 2, 4, 8 with the CPU floor of each.)
// --cores K, with any suite: the bench runs again pinned to K of this machine's cores (CpuPinning), to see how a result
// depends on the core count.
// ("tracing" is not in the default set: it measures the OTLP exporter's cost, per sandbox create and per worker tool call.)
// ("pool" is also part of "engine": it runs the pool rows alone, beside a cold create.)
// The engine suite needs root, runc, CRIU and artifacts/hands-sandboxd (scripts/bench.sh prepares them); it caps N at 30.
// The worker suite needs artifacts/hands-worker (NativeAOT) and tests/conformance/node_modules: scripts/bench.sh prepares both.
// Fault injection and load (root, both NativeAOT binaries in artifacts/; docs/reliability.md):
//   soak [--sessions N] [--steps M] [--minutes T] [--seed S] [--lease-ttl SECONDS] [--max-engine-outage SECONDS]
//   load [--sessions 200] [--steps 2] [--step-seconds 0.5] [--concurrency 16] [--max-sandboxes 256] [--sandbox-timeout S] [--hibernate-after S]
//        [--worker-idle S] [--lease-ttl S] [--resume] [--release] [--minutes T]
// Density (root, both NativeAOT binaries): density [--count 20] [--minutes 10]: idle sandboxes and sessions, memory per state.
if (OperatingSystem.IsLinux() && CpuPinning.RunPinnedIfAsked(args) is { } pinnedExitCode)
{
    return pinnedExitCode;
}

if (args.Length > 0 && args[0] is "soak" or "load" or "density" && OperatingSystem.IsLinux())
{
    var (report, clean) = args[0] switch
    {
        "soak" => await SoakBench.RunAsync(args[1..], RepoRoot()),
        "load" => await LoadBench.RunAsync(args[1..], RepoRoot()),
        _ => await DensityBench.RunAsync(args[1..], RepoRoot()),
    };
    List<string> page = [$"# Hands {args[0]} — {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}", "", .. report];
    foreach (var line in page)
    {
        Console.WriteLine(line);
    }

    var results = Path.Combine(RepoRoot(), "bench", "results");
    Directory.CreateDirectory(results);
    var written = Path.Combine(results, $"{args[0]}-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.md");
    await File.WriteAllLinesAsync(written, page);
    Console.Error.WriteLine($"written to {written}");
    return clean ? 0 : 1;
}

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
    var section = suite switch
    {
        "control-plane" => Section($"control-plane: {iterations} iterations per measurement...",
            "Control plane (loopback HTTP, SQLite WAL synchronous=FULL)", "note",
            async () => await ControlPlaneBench.RunAsync(iterations)),
        "worker" => Section("worker: start-up and per-call overhead, hands-worker vs the official TypeScript worker...",
            "Worker (hands-worker NativeAOT vs official TypeScript worker of @anthropic-ai/sdk 1.14.0, same control plane)", "target / note",
            async () => await WorkerBench.RunAsync(iterations, RepoRoot())),
        "engine" when OperatingSystem.IsLinux() => Section("engine: real runc sandboxes, snapshots, suspend tiers, ingress wake and forks...",
            "Local sandbox engine (runc 1.1.5, overlayfs, own netns per sandbox, CRIU 4.2; image 'host')", "target / note",
            () => EngineBench.RunAsync(Math.Min(iterations, 30), RepoRoot())),
        "pool" when OperatingSystem.IsLinux() => Section("pool: cold create vs a warm pool's claim...",
            "Warm pools (local engine; claim + /bin/true vs create + /bin/true, image 'host', 1 CPU, 1024 MB)", "target / note",
            () => EngineBench.RunPoolAsync(Math.Min(iterations, 30), RepoRoot())),
        "orchestrator" when OperatingSystem.IsLinux() => Section("orchestrator: sessions through real sandboxes per mode, then a burst of 50...",
            "Orchestrator (local control plane + engine, hands-worker in each session's sandbox)", "target / note",
            () => OrchestratorBench.RunAsync(Math.Min(iterations, 20), RepoRoot())),
        "fork" when OperatingSystem.IsLinux() => Section("fork: fork-and-explore from a memory snapshot, N = 1, 2, 4, 8, 16, 32 at once, and up to 8 one at a time...",
            "Fork-and-explore (Hands.Forking on the local engine; memory checkpoint of a parent serving an in-memory counter)", "target / note",
            () => ForkBench.RunAsync(Math.Min(iterations, 20), RepoRoot())),
        "fork-scaling" when OperatingSystem.IsLinux() => Section($"fork-scaling: fork N = 1, 2, 4, 8 from a memory snapshot on {Environment.ProcessorCount} cores...",
            $"Fork scaling (local engine, {Environment.ProcessorCount} cores; children of one memory snapshot, all at once, until each serves through the ingress; one unmeasured round first)", "note",
            () => ForkScalingBench.RunAsync(Math.Min(iterations, 20), RepoRoot())),
        "tracing" when OperatingSystem.IsLinux() => Section("tracing: sandbox create and worker tool call with the OTLP exporter to a loopback receiver vs unset...",
            "Tracing on vs off (OTLP/HTTP protobuf to a receiver on loopback vs no OTEL_* set; create: this process's spans and metrics; call: hands-worker's)", "note",
            () => TracingBench.RunAsync(Math.Min(iterations, 30), RepoRoot())),
        _ => null,
    };
    if (section is null)
    {
        Console.Error.WriteLine($"unknown suite '{suite}'; suites: control-plane, worker, engine, pool, orchestrator, fork, fork-scaling, tracing");
        return 2;
    }

    output.AddRange(await section);
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

// One suite's markdown section: a heading, a p50/p95 table of its rows, a blank line; the progress line goes to stderr.
static async Task<IEnumerable<string>> Section(string progress, string heading, string lastColumn, Func<Task<IEnumerable<string>>> run)
{
    Console.Error.WriteLine(progress);
    var rows = await run();
    return [$"## {heading}", "", $"| operation | n | p50 ms | p95 ms | {lastColumn} |", "|---|---|---|---|---|", .. rows, ""];
}
