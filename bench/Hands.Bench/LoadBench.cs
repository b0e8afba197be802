using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using Hands.Faults;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// <c>load</c>: N sessions at once, each in its own sandbox, on the whole stack as separate processes (no faults): every
/// session is created and its message sent together, and the orchestrator spins them up (at most <c>--concurrency</c>
/// at a time) while each turn runs a few short bash steps. Reports the time to drain (every turn ended), session
/// latency, the host's memory low-water mark with each process's share at that moment, sandboxes by state at the peak,
/// the queue, spawn failures and their reasons (what ran out first), and the same lost / twice counts as the soak.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class LoadBench
{
    private static readonly TimeSpan SampleEvery = TimeSpan.FromSeconds(1);

    public static async Task<(List<string> Report, bool Clean)> RunAsync(IReadOnlyList<string> args, string repoRoot)
    {
        var sessions = SoakBench.Int(args, "--sessions", 200, 1, 1000);
        var steps = SoakBench.Int(args, "--steps", 2, 1, 20);
        var stepSeconds = SoakBench.Number(args, "--step-seconds", 0.5, 0, 60);
        var concurrency = SoakBench.Int(args, "--concurrency", 16, 1, 256);
        var maxSandboxes = SoakBench.Int(args, "--max-sandboxes", 256, 1, 16383);
        var sandboxTimeout = SoakBench.Int(args, "--sandbox-timeout", 3600, 0, 86400);
        var hibernateAfter = SoakBench.Int(args, "--hibernate-after", 600, 1, 86400);
        var workerIdle = SoakBench.Int(args, "--worker-idle", 60, 1, 3600);
        var volumeMb = SoakBench.Int(args, "--volume-mb", 4096, 1024, 65536);
        var minutes = SoakBench.Int(args, "--minutes", 20, 1, 240);
        var leaseTtl = SoakBench.Int(args, "--lease-ttl", 60, 4, 600);
        var resume = args.Contains("--resume");
        // Churn: each finished session's sandbox is deleted once its worker stopped the item, freeing capacity (as an
        // operator's clean-up would); without it every sandbox lives to the end.
        var release = args.Contains("--release");
        var stamp = DateTimeOffset.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture);
        var logs = Path.Combine(repoRoot, "bench", "results", $"load-{stamp}-logs");
        var time = TimeProvider.System;
        Console.Error.WriteLine($"load: {sessions} sessions × {steps} steps of {stepSeconds} s, concurrency {concurrency}, at most {minutes} min; logs in {logs}");
        using var bounded = new CancellationTokenSource(TimeSpan.FromMinutes(minutes + 15));
        var ct = bounded.Token;
        var baseline = HostStats.MemAvailableBytes();
        await using var stack = await FaultStack.StartAsync(new FaultStackOptions
        {
            HandsDll = Path.Combine(AppContext.BaseDirectory, "hands.dll"),
            SandboxDaemonBinary = Path.Combine(repoRoot, "artifacts/hands-sandboxd/hands-sandboxd"),
            WorkerBinary = Path.Combine(repoRoot, "artifacts/hands-worker/hands-worker"),
            LogDirectory = logs,
            Steps = steps,
            StepSleep = _ => TimeSpan.FromSeconds(stepSeconds),
            // The production default unless asked: no faults here, and a lapse would only hide a stall.
            LeaseTtl = TimeSpan.FromSeconds(leaseTtl),
            ResumeSuspendedSessions = resume,
            Concurrency = concurrency,
            MaxSandboxes = maxSandboxes,
            SandboxTimeoutSeconds = sandboxTimeout,
            HibernateAfter = TimeSpan.FromSeconds(hibernateAfter),
            WorkerMaxIdle = TimeSpan.FromSeconds(workerIdle),
            VolumeMb = volumeMb,
            Log = line => Console.Error.WriteLine(line),
        }, ct);
        await using var watcher = new SessionWatcher(stack.App, time);
        var released = new ConcurrentDictionary<string, Task<SessionAccount>>(StringComparer.Ordinal);
        if (release)
        {
            watcher.TurnEnded += session => released[session.Id] = Task.Run(() => ReleaseAsync(stack, session.Id, steps, time, ct), ct);
        }

        using var sampling = new CancellationTokenSource();
        var sampler = new Sampler(stack);
        var samplingTask = sampler.RunAsync(SampleEvery, sampling.Token);

        // Every session at once: created and its message sent by a few callers in parallel, so the harness is not the bottleneck.
        var start = Stopwatch.GetTimestamp();
        var ids = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, sessions), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (_, token) =>
        {
            var session = await Patiently.RunAsync(stack.CreateSessionAsync, time, token);
            var message = await Patiently.RunAsync(c => stack.SendTurnAsync(session, c), time, token);
            watcher.Watch(session, message, Stopwatch.GetTimestamp());
            ids.Add(session);
        });
        var submitted = Stopwatch.GetElapsedTime(start);
        Console.Error.WriteLine($"load: {sessions} sessions submitted in {submitted.TotalSeconds:0.0} s");
        var deadline = time.GetTimestamp() + (long)(TimeSpan.FromMinutes(minutes).TotalSeconds * time.TimestampFrequency);
        var lastReport = 0;
        for (var check = 0; check < minutes * 60 * 4 && time.GetTimestamp() < deadline; check++)
        {
            var ended = watcher.Sessions.Count(s => s.Ended);
            if (ended == sessions)
            {
                break;
            }

            if (check - lastReport >= 20)
            {
                lastReport = check;
                Console.Error.WriteLine($"load: +{Stopwatch.GetElapsedTime(start).TotalSeconds:0} s: {ended} of {sessions} turns ended; {sampler.Latest}");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), time, ct);
        }

        var all = watcher.Sessions.ToList();
        var drained = all.All(s => s.Ended) ? Stopwatch.GetElapsedTime(start, all.Max(s => s.EndedTimestamp)) : (TimeSpan?)null;
        await sampling.CancelAsync();
        await samplingTask;

        // The same accounting as the soak: every call answered once, every command run once.
        var accounts = new ConcurrentBag<SessionAccount>(await Task.WhenAll(released.Values));
        await Parallel.ForEachAsync(ids.Where(id => !released.ContainsKey(id)), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (id, token) =>
            accounts.Add(await FaultRun.AccountAsync(stack, id, steps, time, token)));
        var outcomes = new FaultOutcomes { Shape = $"{sessions} sessions × {steps} steps" };
        outcomes.Sessions.AddRange(accounts);
        outcomes.OrphansAfterRecovery.AddRange(await Patiently.RunAsync(stack.FindOrphansAsync, time, ct));
        var spawnFailures = stack.Orchestrator.Lines(l => l.Contains("spawn failed", StringComparison.Ordinal));
        var capacityRefusals = stack.Orchestrator.Lines(l => l.Contains("at capacity; released", StringComparison.Ordinal));
        var engineWarnings = stack.Engine.Lines(l => l.Contains("warn:", StringComparison.Ordinal) || l.Contains("fail:", StringComparison.Ordinal));
        var planeWarnings = stack.ControlPlane.Lines(l => l.Contains("warn:", StringComparison.Ordinal) || l.Contains("fail:", StringComparison.Ordinal));
        var workersStarted = stack.Orchestrator.Lines(l => l.Contains("worker started in", StringComparison.Ordinal)).Count;
        var teardown = Stopwatch.GetTimestamp();
        outcomes.LeaksAfterTeardown.AddRange(await stack.TearDownAsync(ct));
        var teardownTime = Stopwatch.GetElapsedTime(teardown);

        var latencies = new Measurements("latency");
        var firstResults = new Measurements("first");
        foreach (var s in all.Where(s => s.Ended))
        {
            latencies.Add(s.Latency!.Value);
        }

        foreach (var s in all.Where(s => s.FirstResultTimestamp != 0))
        {
            firstResults.Add(Stopwatch.GetElapsedTime(s.StartedTimestamp, s.FirstResultTimestamp));
        }

        var peak = sampler.Peak;
        string Gib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB");
        string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 20):0} MiB");
        string Row(string what, string value) => $"| {what} | {value} |";
        List<string> report =
        [
            $"## Load: {sessions} concurrent sessions, each in its own sandbox, {steps} bash steps of {stepSeconds.ToString(CultureInfo.InvariantCulture)} s",
            "",
            $"`dotnet run -c Release --project bench/Hands.Bench -- load --sessions {sessions} --steps {steps} --step-seconds {stepSeconds.ToString(CultureInfo.InvariantCulture)} --concurrency {concurrency} --sandbox-timeout {sandboxTimeout} --hibernate-after {hibernateAfter} --worker-idle {workerIdle} --lease-ttl {leaseTtl} --max-sandboxes {maxSandboxes}{(resume ? " --resume" : "")}{(release ? " --release" : "")}`",
            "",
            $"{Environment.ProcessorCount} cores, {Gib(HostStats.MemTotalBytes())} RAM; the control plane, the engine and the orchestrator as separate processes, every session's worker in its own sandbox (image `host`), orchestrator concurrency {concurrency}, engine `--max-sandboxes {maxSandboxes}`, sandbox idle timeout {sandboxTimeout} s, hibernate after {hibernateAfter} s, worker max idle {workerIdle} s, lease TTL {leaseTtl} s, suspended sessions {(resume ? "resumed" : "replaced")}{(release ? ", each finished session's sandbox deleted once its worker stopped" : ", every sandbox kept to the end")}.",
            "",
            "| measure | value |",
            "|---|---|",
            Row("sessions submitted (created and message sent)", string.Create(CultureInfo.InvariantCulture, $"{sessions} in {submitted.TotalSeconds:0.0} s")),
            Row("time to drain (first message → last end_turn)", drained is { } d ? string.Create(CultureInfo.InvariantCulture, $"{d.TotalSeconds:0.0} s") : $"not drained within {minutes} min"),
            Row("sessions completed (end_turn after every step)", $"{outcomes.Completed} of {sessions}"),
            Row("session latency, message → end_turn: p50 / p95 / max", Seconds(latencies.Percentile(50), latencies.Percentile(95), latencies.Percentile(100))),
            Row("message → first tool result (waits for a spawn slot, sandbox create, worker attach): p50 / p95 / max", Seconds(firstResults.Percentile(50), firstResults.Percentile(95), firstResults.Percentile(100))),
            Row("tool calls lost / results posted twice / commands executed twice / results without their effect", $"{outcomes.Lost} / {outcomes.PostedTwice} / {outcomes.ExecutedTwice} / {outcomes.EffectsMissing}"),
            Row("calls answered \"interrupted\"", outcomes.Interrupted.ToString(CultureInfo.InvariantCulture)),
            Row("session sandboxes lost and made again after work began", outcomes.SandboxesReplaced.ToString(CultureInfo.InvariantCulture)),
            Row("workers started (one per session when nothing failed)", workersStarted.ToString(CultureInfo.InvariantCulture)),
            Row("host MemAvailable: before the stack / low-water mark", $"{Gib(baseline)} / {Gib(peak.MemAvailable)} (at +{peak.At.TotalSeconds:0} s: {Gib(baseline - peak.MemAvailable)} in use by the run)"),
            Row("at the low-water mark: engine / control plane / orchestrator RSS", $"{Mib(peak.EngineRss)} / {Mib(peak.ControlPlaneRss)} / {Mib(peak.OrchestratorRss)}"),
            Row("at the low-water mark: sandboxes' cgroups (memory.current, summed) / hands-worker processes alive", $"{Mib(peak.SandboxMemory)} / {peak.Workers}"),
            Row("sandboxes by state at the low-water mark", peak.States),
            Row("most sandboxes alive at once / most hands-worker processes at once", $"{sampler.MostAlive} / {sampler.MostWorkers}"),
            Row("work queue: most items queued (depth) / most polled but not acknowledged (pending)", $"{sampler.MostQueued} / {sampler.MostPending}"),
            Row("host load average (1 min), highest", sampler.MostLoad.ToString("0.0", CultureInfo.InvariantCulture)),
            Row("spawns refused by the provider for capacity (item released to the queue, claims paused)", capacityRefusals.Count == 0 ? "0" : $"{capacityRefusals.Count}: {Reasons(capacityRefusals)}"),
            Row("spawn failures (item released and claimed again)", spawnFailures.Count == 0 ? "0" : $"{spawnFailures.Count}: {Reasons(spawnFailures)}"),
            Row("engine warnings / control-plane warnings", $"{engineWarnings.Count} / {planeWarnings.Count}"),
            Row("orphans after the run / leaks after teardown", $"{outcomes.OrphansAfterRecovery.Count} / {outcomes.LeaksAfterTeardown.Count}"),
            Row("teardown (delete every sandbox, stop the stack)", string.Create(CultureInfo.InvariantCulture, $"{teardownTime.TotalSeconds:0.0} s")),
            "",
        ];
        var problems = outcomes.Sessions.SelectMany(s => s.Details).Concat(outcomes.OrphansAfterRecovery).Concat(outcomes.LeaksAfterTeardown)
            .Concat(engineWarnings.Take(5).Select(w => "engine: " + w)).Concat(planeWarnings.Take(5).Select(w => "control plane: " + w)).Take(40).ToList();
        if (problems.Count > 0)
        {
            report.Add("Problems and warnings (first 40):");
            report.AddRange(problems.Select(p => "- " + p));
            report.Add("");
        }

        return (report, outcomes.Clean && drained is not null);
    }

    /// <summary>A finished session, once its worker stopped its item (bounded: a minute past its max idle): accounted, then its sandbox deleted.</summary>
    private static async Task<SessionAccount> ReleaseAsync(FaultStack stack, string sessionId, int steps, TimeProvider time, CancellationToken cancellationToken)
    {
        var waits = (int)((stack.Options.WorkerMaxIdle + TimeSpan.FromMinutes(1)) / TimeSpan.FromMilliseconds(500));
        for (var wait = 0; wait < waits && await stack.WorkStateAsync(sessionId, cancellationToken) is not (Hands.Protocol.Models.WorkState.Stopped or null); wait++)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(500), time, cancellationToken);
        }

        var account = await FaultRun.AccountAsync(stack, sessionId, steps, time, cancellationToken);
        await Patiently.RunAsync(c => stack.DeleteSandboxAsync(sessionId, c), time, cancellationToken);
        return account;
    }

    private static string Seconds(params double[] ms) => string.Join(" / ", ms.Select(m => double.IsNaN(m) ? "—" : string.Create(CultureInfo.InvariantCulture, $"{m / 1000:0.0} s")));

    private static string Reasons(IReadOnlyList<string> lines) => string.Join("; ", lines.Select(Reason).GroupBy(r => r.Length > 140 ? r[..140] : r).OrderByDescending(g => g.Count()).Take(4).Select(g => $"{g.Count()}× {g.Key}"));

    /// <summary>The spawner's or the provider's own words in an orchestrator log line: what follows its marker.</summary>
    private static string Reason(string line)
    {
        foreach (var marker in new[] { "wait in the queue: ", "for another try: ", "gives up on it: " })
        {
            var at = line.LastIndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                return line[(at + marker.Length)..];
            }
        }

        return line;
    }

    /// <summary>One sample of the host and the stack.</summary>
    private sealed record Sample(TimeSpan At, long MemAvailable, long EngineRss, long ControlPlaneRss, long OrchestratorRss, long SandboxMemory, int Workers, string States);

    /// <summary>Samples memory, sandboxes, workers, the queue and the load every second; keeps the low-water mark of MemAvailable and the highs.</summary>
    private sealed class Sampler(FaultStack stack)
    {
        private readonly long _start = Stopwatch.GetTimestamp();

        public Sample Peak { get; private set; } = new(TimeSpan.Zero, long.MaxValue, 0, 0, 0, 0, 0, "—");
        public int MostAlive { get; private set; }
        public int MostWorkers { get; private set; }
        public int MostQueued { get; private set; }
        public int MostPending { get; private set; }
        public double MostLoad { get; private set; }
        public string Latest { get; private set; } = "";

        public async Task RunAsync(TimeSpan every, CancellationToken cancellationToken)
        {
            for (var round = 0; round < 100_000 && !cancellationToken.IsCancellationRequested; round++)
            {
                try
                {
                    await SampleAsync(cancellationToken);
                    await Task.Delay(every, cancellationToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                catch (Exception ex) when (ex is Hands.Common.HandsException or HttpRequestException or IOException)
                {
                    // A sample the stack was too busy to answer: the next one counts.
                    Latest = "sample failed: " + ex.Message;
                }
            }
        }

        private async Task SampleAsync(CancellationToken cancellationToken)
        {
            var memAvailable = HostStats.MemAvailableBytes();
            var sandboxes = await stack.ListSandboxesAsync(cancellationToken);
            var alive = sandboxes.Where(s => s.Status != SandboxStatus.Terminated).ToList();
            var states = string.Join(", ", alive.GroupBy(s => s.Status + (s.SuspendTier is { } tier ? $" ({tier})" : ""))
                .OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key} {g.Count()}"));
            var sandboxMemory = alive.Sum(s => HostStats.CgroupMemoryBytes(s.CanonicalId));
            var workers = HostStats.ProcessesNamed("hands-worker");
            var queue = await stack.EnvironmentClient.Work.StatsAsync(stack.EnvironmentId, cancellationToken);
            var load = HostStats.LoadAverage();
            MostAlive = Math.Max(MostAlive, alive.Count);
            MostWorkers = Math.Max(MostWorkers, workers);
            MostQueued = Math.Max(MostQueued, queue.Depth);
            MostPending = Math.Max(MostPending, queue.Pending);
            MostLoad = Math.Max(MostLoad, load);
            var sample = new Sample(Stopwatch.GetElapsedTime(_start), memAvailable, stack.Engine.ResidentBytes(), stack.ControlPlane.ResidentBytes(),
                stack.Orchestrator.ResidentBytes(), sandboxMemory, workers, states.Length == 0 ? "none" : states);
            if (memAvailable < Peak.MemAvailable)
            {
                Peak = sample;
            }

            Latest = string.Create(CultureInfo.InvariantCulture,
                $"sandboxes {sample.States}; workers {workers}; queued {queue.Depth}, pending {queue.Pending}; MemAvailable {memAvailable >> 20} MiB; load {load:0.0}");
        }
    }
}
