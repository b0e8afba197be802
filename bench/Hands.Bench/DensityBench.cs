using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Engine;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// <c>density</c>: what an idle sandbox and an idle session cost the host, measured from outside. On the real local
/// stack (control plane, engine, orchestrator in this process; hands-worker in each session's sandbox) it fills the
/// machine with at most <c>--count</c> of each, bounded in time (<c>--minutes</c>) and by a host memory floor, and
/// reports per sandbox: the host's MemAvailable drop, the sandboxes' memory cgroups (anon and page cache), each
/// process's proportional share (PSS) by name inside them, and this process's growth (engine + control plane +
/// orchestrator). States: running idle sandbox (no worker), running session (its hands-worker attached, its event
/// stream open), the same sessions frozen, then hibernated (memory and disk: CRIU image and the sandbox's disk).
/// </summary>
[SupportedOSPlatform("linux")]
internal static class DensityBench
{
    private const long MemoryFloor = 2L << 30;
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(3);

    public static async Task<(List<string> Report, bool Clean)> RunAsync(IReadOnlyList<string> args, string repoRoot)
    {
        var count = SoakBench.Int(args, "--count", 20, 1, 200);
        var minutes = SoakBench.Int(args, "--minutes", 10, 1, 60);
        var deadline = Stopwatch.GetTimestamp() + (long)(TimeSpan.FromMinutes(minutes).TotalSeconds * Stopwatch.Frequency);
        bool Late() => Stopwatch.GetTimestamp() > deadline;
        var data = Path.Combine(Path.GetTempPath(), "hands-bench-density-" + Guid.NewGuid().ToString("N")[..8]);
        var (cpPort, apiPort, ingressPort) = (FreePort(), FreePort(), FreePort());
        const string apiKey = "sk-ant-api03-bench";
        var report = new List<string>();
        var limits = new List<string>();
        await using var cp = await ControlPlaneServer.StartAsync(new ControlPlaneOptions { Urls = $"http://127.0.0.1:{cpPort}", DataDirectory = Path.Combine(data, "cp"), ApiKey = apiKey });
        await using var engine = await EngineServer.StartAsync(new EngineOptions
        {
            DataDirectory = Path.Combine(data, "engine"),
            ApiUrl = new Uri($"http://127.0.0.1:{apiPort}"),
            IngressUrl = new Uri($"http://127.0.0.1:{ingressPort}"),
            SandboxDaemonBinary = Path.Combine(repoRoot, "artifacts/hands-sandboxd/hands-sandboxd"),
            WorkerBinary = Path.Combine(repoRoot, "artifacts/hands-worker/hands-worker"),
            HostPorts = [cpPort, apiPort, ingressPort],
            MaxSandboxes = count + 2,
            ApiKey = BenchEngine.ApiKey,
            HibernateAfter = TimeSpan.FromHours(1),
            VolumeMb = Math.Max(4096, count * 96),
        }, logging => { });
        using var sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = engine.ApiAddress, ApiKey = BenchEngine.ApiKey, MaxRetries = 0 });
        using var client = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(apiKey), new ManagedAgentsClientOptions { BaseUrl = cp.BaseAddress });
        var volume = Path.Combine(data, "engine", "volume", "sandboxes");
        try
        {
            // 1. Idle sandboxes, nothing but their daemon.
            var before = await SnapshotAsync([]);
            var idle = new List<string>();
            while (idle.Count < count)
            {
                if (Late() || HostStats.MemAvailableBytes() < MemoryFloor)
                {
                    limits.Add($"idle sandboxes: stopped at {idle.Count} ({(Late() ? "time bound" : "host memory floor")})");
                    break;
                }

                try
                {
                    idle.Add((await sandboxes.CreateAsync(new CreateSandboxRequest { Image = "host", Name = $"density-{idle.Count}", TimeoutSecs = 0 })).CanonicalId);
                }
                catch (Hands.Common.HandsException ex)
                {
                    limits.Add($"idle sandboxes: the engine refused #{idle.Count + 1}: {ex.Message}");
                    break;
                }
            }

            await Task.Delay(Settle);
            var idleState = await SnapshotAsync(idle);
            foreach (var id in idle)
            {
                await sandboxes.DeleteAsync(id);
            }

            if (idle.Count == count)
            {
                limits.Add($"idle sandboxes: stopped at the bound, {count}");
            }

            // 2. Sessions: one sandbox each with its hands-worker attached and idle (no message yet: the worker waits on its stream).
            await Task.Delay(Settle);
            var sessionBase = await SnapshotAsync([]);
            var env = await client.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "density", Config = JsonDocument.Parse("""{"type":"self_hosted"}""").RootElement });
            var envKey = (await client.Environments.CreateKeyAsync(env.Id)).Key;
            using var envClient = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(envKey), new ManagedAgentsClientOptions { BaseUrl = cp.BaseAddress });
            var agent = (await client.Agents.CreateAsync(new CreateAgentRequest
            {
                Name = "density",
                Model = JsonSerializer.SerializeToElement("scripted:demo", ProtocolJsonContext.Default.String),
                Tools = [JsonDocument.Parse("""{"type":"agent_toolset_20260401"}""").RootElement],
            })).Id;
            var sessionCount = 0;
            while (sessionCount < count && !Late() && HostStats.MemAvailableBytes() >= MemoryFloor)
            {
                await client.Sessions.CreateAsync(new CreateSessionRequest { Agent = JsonSerializer.SerializeToElement(agent, ProtocolJsonContext.Default.String), EnvironmentId = env.Id });
                sessionCount++;
            }

            await using var orchestrator = new WorkQueueOrchestrator(envClient, sandboxes, new OrchestratorOptions
            {
                EnvironmentId = env.Id,
                EnvironmentKey = envKey,
                BaseUrl = cp.BaseAddress,
                Image = "host",
                WorkerMaxIdle = TimeSpan.FromMinutes(minutes + 5),
                MaxConcurrentSpawns = 8,
            });
            var summary = await orchestrator.DrainAsync(CancellationToken.None);
            limits.Add(summary.Spawned == count
                ? $"sessions: stopped at the bound, {count}"
                : $"sessions: {summary.Spawned} of {sessionCount} attached{(sessionCount < count ? " (time bound or host memory floor)" : "")}; {summary.Outcomes.FirstOrDefault(o => !o.Succeeded)?.Detail}");
            var sessions = new List<string>();
            await foreach (var sandbox in sandboxes.ListAllAsync())
            {
                if (sandbox.Status == SandboxStatus.Running && sandbox.Name?.StartsWith("agent-", StringComparison.Ordinal) == true)
                {
                    sessions.Add(sandbox.CanonicalId);
                }
            }

            // Every worker attached and past its start-up before the sample.
            for (var wait = 0; wait < 100 && HostStats.ProcessesNamed("hands-worker") < sessions.Count; wait++)
            {
                await Task.Delay(100);
            }

            await Task.Delay(Settle);
            var sessionState = await SnapshotAsync(sessions);

            // 3. The same sessions frozen (runc pause: their memory stays).
            foreach (var id in sessions)
            {
                await sandboxes.SuspendAsync(id);
            }

            await Task.Delay(Settle);
            var frozenState = await SnapshotAsync(sessions);

            // 4. Hibernated (CRIU dump to the data volume, container gone).
            var hibernate = new Measurements("hibernate");
            foreach (var id in sessions)
            {
                if (Late())
                {
                    limits.Add("hibernation: time bound reached before every session was hibernated");
                    break;
                }

                var start = Stopwatch.GetTimestamp();
                await sandboxes.SuspendAsync(id, hibernate: true);
                hibernate.Add(start);
            }

            await Task.Delay(Settle);
            var hibernatedState = await SnapshotAsync(sessions);
            var images = sessions.Select(id => DirectoryBytes(Path.Combine(volume, id, "hibernation"))).ToList();
            var disks = sessions.Select(id => AllocatedBytes(Path.Combine(volume, id, "disk.img"))).ToList();

            var n = sessions.Count;
            string Per(long bytes, int k) => k == 0 ? "—" : Mib(bytes / (double)k);
            string Row(string state, int k, Snapshot baseline, Snapshot at) =>
                $"| {state} | {k} | {Per(baseline.MemAvailable - at.MemAvailable, k)} | {Per(at.Cgroups.Usage, k)} | {Per(at.Cgroups.Anon, k)} / {Per(at.Cgroups.Cache, k)} | {Per(at.SelfRss - baseline.SelfRss, k)} | {Processes(at, k)} |";
            report.AddRange(
            [
                $"## Density: idle sandboxes and idle sessions (hands-worker attached), {count} at most, {minutes} min at most",
                "",
                $"`dotnet run -c Release --project bench/Hands.Bench -- density --count {count} --minutes {minutes}`",
                "",
                $"{Environment.ProcessorCount} cores, {Gib(HostStats.MemTotalBytes())} RAM, MemAvailable {Gib(before.MemAvailable)} at the start; image `host`, hardened defaults (seccomp, no_new_privs, daemon token, host firewall, each sandbox's own disk image). "
                    + "Per sandbox: the host's MemAvailable drop over the state's baseline, the sandboxes' memory cgroups (v1 `memory.usage_in_bytes`; `total_rss` / `total_cache`), this process's RSS growth (engine, control plane, orchestrator) "
                    + "and each process's PSS inside the sandboxes. Other work on the machine moves MemAvailable by a few MiB; the cgroups and PSS are the sandboxes' own.",
                "",
                "| state | sandboxes | host MemAvailable drop / sandbox | cgroup usage / sandbox | cgroup anon / page cache | engine-side RSS growth / sandbox | PSS inside, by process (per sandbox) |",
                "|---|---|---|---|---|---|---|",
                Row("running, idle (daemon only)", idle.Count, before, idleState),
                Row("session: running, hands-worker attached and idle", n, sessionBase, sessionState),
                Row("session frozen (runc pause)", n, sessionBase, frozenState),
                Row("session hibernated (CRIU image on disk, no process)", n, sessionBase, hibernatedState),
                "",
                "| measure | value |",
                "|---|---|",
                $"| hibernated session on disk: CRIU image p50 / max | {Mib(Median(images))} / {Mib(images.DefaultIfEmpty(0).Max())} |",
                $"| hibernated session on disk: its disk image's allocated blocks p50 / max | {Mib(Median(disks))} / {Mib(disks.DefaultIfEmpty(0).Max())} |",
                string.Create(CultureInfo.InvariantCulture, $"| hibernate (CRIU dump + stop) p50 / p95, sessions one after another | {hibernate.Percentile(50):0} / {hibernate.Percentile(95):0} ms |"),
                $"| idle sessions per GiB of host memory (running / hibernated) | {PerGib(sessionBase.MemAvailable - sessionState.MemAvailable, n)} / {PerGib(sessionBase.MemAvailable - hibernatedState.MemAvailable, n)} |",
                $"| where it stopped | {string.Join("; ", limits)} |",
                "",
            ]);
        }
        finally
        {
            await BenchEngine.RemoveAllAsync(sandboxes);
        }

        try
        {
            Directory.Delete(data, recursive: true);
        }
        catch (IOException)
        {
            // The engine's volume may still be going away; the temporary directory is harmless.
        }

        return (report, true);
    }

    private static string PerGib(long bytes, int k) => k == 0 || bytes <= 0 ? "—" : ((1L << 30) / (bytes / (double)k)).ToString("0", CultureInfo.InvariantCulture);

    private static long Median(List<long> values) => values.Count == 0 ? 0 : values.Order().ElementAt(values.Count / 2);

    private static string Gib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (double)(1L << 30):0.00} GiB");

    private static string Mib(double bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1 << 20):0.0} MiB");

    private static string Processes(Snapshot at, int k) => k == 0 || at.Pss.Count == 0
        ? "—"
        : string.Join(", ", at.Pss.OrderByDescending(p => p.Value).Select(p => $"{p.Key} {Mib(p.Value / (double)k)}"));

    private sealed record CgroupTotals(long Usage, long Anon, long Cache);

    private sealed record Snapshot(long MemAvailable, long SelfRss, CgroupTotals Cgroups, Dictionary<string, long> Pss);

    private static async Task<Snapshot> SnapshotAsync(IReadOnlyList<string> ids)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        await Task.Delay(200);
        var usage = 0L;
        var anon = 0L;
        var cache = 0L;
        var pss = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            var dir = Path.Combine("/sys/fs/cgroup/memory/hands", id);
            if (!Directory.Exists(dir))
            {
                continue;
            }

            usage += long.Parse(File.ReadAllText(Path.Combine(dir, "memory.usage_in_bytes")).Trim(), CultureInfo.InvariantCulture);
            foreach (var line in File.ReadLines(Path.Combine(dir, "memory.stat")))
            {
                var parts = line.Split(' ');
                if (parts[0] == "total_rss")
                {
                    anon += long.Parse(parts[1], CultureInfo.InvariantCulture);
                }
                else if (parts[0] == "total_cache")
                {
                    cache += long.Parse(parts[1], CultureInfo.InvariantCulture);
                }
            }

            foreach (var pid in File.ReadAllLines(Path.Combine(dir, "cgroup.procs")))
            {
                try
                {
                    var comm = File.ReadAllText($"/proc/{pid}/comm").Trim();
                    var kb = File.ReadLines($"/proc/{pid}/smaps_rollup").Where(l => l.StartsWith("Pss:", StringComparison.Ordinal))
                        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture)).FirstOrDefault();
                    pss[comm] = pss.GetValueOrDefault(comm) + kb * 1024;
                }
                catch (IOException)
                {
                    // Gone meanwhile.
                }
            }
        }

        using var self = Process.GetCurrentProcess();
        self.Refresh();
        return new Snapshot(HostStats.MemAvailableBytes(), self.WorkingSet64, new CgroupTotals(usage, anon, cache), pss);
    }

    private static long DirectoryBytes(string path) => Directory.Exists(path)
        ? new DirectoryInfo(path).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length)
        : 0;

    /// <summary>What a sparse file takes on disk (<c>du</c>'s allocated blocks).</summary>
    private static long AllocatedBytes(string path)
    {
        if (!File.Exists(path))
        {
            return 0;
        }

        using var du = Process.Start(new ProcessStartInfo("du", ["-B1", "--", path]) { RedirectStandardOutput = true })!;
        var output = du.StandardOutput.ReadToEnd();
        du.WaitForExit();
        return long.TryParse(output.Split('\t')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var bytes) ? bytes : 0;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
