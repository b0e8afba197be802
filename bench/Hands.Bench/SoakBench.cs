using System.Globalization;
using System.Runtime.Versioning;
using Hands.Faults;

namespace Hands.Bench;

/// <summary>
/// <c>soak</c>: the whole stack as separate processes (control plane, engine, orchestrator; workers in sandboxes) under
/// random faults at random points for a while: each of the four processes SIGKILLed (and started again after a random
/// delay), 500 and 429 bursts, network cuts between the workers and the control plane shorter and longer than the
/// lease TTL. N sessions of M slow bash steps are kept in flight (each finished one is accounted, its sandbox deleted,
/// and a new one started). Prints the counted outcomes; exit code 0 only when nothing was lost, run or posted twice,
/// every session completed and nothing leaked.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class SoakBench
{
    public static async Task<(List<string> Report, bool Clean)> RunAsync(IReadOnlyList<string> args, string repoRoot)
    {
        var sessions = Int(args, "--sessions", 4, 1, 64);
        var steps = Int(args, "--steps", 6, 1, 100);
        var minutes = Int(args, "--minutes", 5, 1, 240);
        var ttl = Int(args, "--lease-ttl", 10, 4, 120);
        var seed = Int(args, "--seed", Random.Shared.Next(1, 1_000_000), 0, int.MaxValue);
        // The workers' path to the control plane is the engine's host-port forward, inside the engine process: an engine
        // outage must stay well inside one heartbeat interval plus its retries (TTL/2) or leases are lost. Until the
        // forwards run in a process of their own, the soak keeps engine outages to a fifth of the TTL.
        var maxEngineOutage = TimeSpan.FromSeconds(Int(args, "--max-engine-outage", Math.Max(1, ttl / 5), 0, 600));
        var stamp = DateTimeOffset.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var logs = Path.Combine(repoRoot, "bench", "results", $"soak-{stamp}-logs");
        Console.Error.WriteLine($"soak: {sessions} sessions in flight × {steps} steps, {minutes} min of random faults, seed {seed}, lease TTL {ttl} s; logs in {logs}");
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(minutes + 20));
        var outcomes = await FaultRun.RunAsync(new FaultStackOptions
        {
            HandsDll = Path.Combine(AppContext.BaseDirectory, "hands.dll"),
            SandboxDaemonBinary = Path.Combine(repoRoot, "artifacts/hands-sandboxd/hands-sandboxd"),
            WorkerBinary = Path.Combine(repoRoot, "artifacts/hands-worker/hands-worker"),
            LogDirectory = logs,
            Steps = steps,
            LeaseTtl = TimeSpan.FromSeconds(ttl),
            WorkerMaxIdle = TimeSpan.FromSeconds(3),
            Log = line => Console.Error.WriteLine(line),
        }, new FaultRunOptions
        {
            Sessions = sessions,
            KeepSessionsRunning = true,
            Faults = FaultSchedules.Random(seed, TimeSpan.FromSeconds(ttl), maxEngineOutage),
            FaultWindow = TimeSpan.FromMinutes(minutes),
            PointTimeout = TimeSpan.FromSeconds(30),
            DrainTimeout = TimeSpan.FromMinutes(5),
            Seed = seed,
            RandomSchedule = true,
        }, bounded.Token);
        List<string> report =
        [
            $"## Soak: {outcomes.Shape}, {minutes} min of random faults, seed {seed}",
            "",
            $"`dotnet run -c Release --project bench/Hands.Bench -- soak --sessions {sessions} --steps {steps} --minutes {minutes} --seed {seed} --lease-ttl {ttl} --max-engine-outage {maxEngineOutage.TotalSeconds:0}`",
            "",
            $"Lease TTL {ttl} s; engine outages at most {maxEngineOutage.TotalSeconds:0} s (plus its restart); {outcomes.Elapsed.TotalMinutes:0.0} min from the first session to the last end of turn. Process logs: `{Path.GetRelativePath(repoRoot, logs)}`.",
            "",
            .. outcomes.Report(),
            "",
        ];
        return (report, outcomes.Clean);
    }

    /// <summary>An integer option <c>--name N</c> of the soak and load commands, within bounds.</summary>
    public static int Int(IReadOnlyList<string> args, string name, int fallback, int min, int max)
    {
        for (var i = 0; i < args.Count - 1; i++)
        {
            if (args[i] == name)
            {
                return int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                    ? value
                    : throw new ArgumentException($"{name}: '{args[i + 1]}' is not a whole number from {min} to {max}");
            }
        }

        return fallback;
    }

    /// <summary>A decimal option <c>--name X</c>, within bounds.</summary>
    public static double Number(IReadOnlyList<string> args, string name, double fallback, double min, double max)
    {
        for (var i = 0; i < args.Count - 1; i++)
        {
            if (args[i] == name)
            {
                return double.TryParse(args[i + 1], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
                    ? value
                    : throw new ArgumentException($"{name}: '{args[i + 1]}' is not a number from {min} to {max}");
            }
        }

        return fallback;
    }
}
