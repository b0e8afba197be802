using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Runtime.Versioning;
using Hands.Engine;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// The engine's operations against the targets in ARCHITECTURE.md, on real containers: create + /bin/true, exec, a
/// warm pool's claim beside the cold create, freeze/thaw, hibernate/restore, wake through the ingress in both tiers, memory checkpoint, and fork N=8 from a
/// memory snapshot until every child serves. Every sandbox and snapshot made here is deleted before the suite ends.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class EngineBench
{
    public static async Task<IEnumerable<string>> RunAsync(int n, string repoRoot)
    {
        await using var bench = await BenchEngine.StartAsync("engine", repoRoot);
        var (engine, client) = (bench.Engine, bench.Client);
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero });
        var rows = new List<string>();
        var (create, exec) = await CreateAndExecAsync(client, n, "");
        rows.Add(create.Row("< 100 ms; Tensorlake/E2B ~150 ms+"));
        rows.Add(exec.Row("process API through the ingress"));
        rows.AddRange(await PoolRowsAsync(client, n, create));
        rows.AddRange(await BlankDisksRowsAsync(client, n));

        var server = await StartServerAsync(http, engine, client);

        var freeze = new Measurements("freeze (runc pause) + thaw");
        var wakeFrozen = new Measurements("wake frozen sandbox via ingress, HTTP answered");
        var hibernate = new Measurements("hibernate (CRIU dump + stop)");
        var wakeHibernated = new Measurements("wake hibernated sandbox via ingress, HTTP answered");
        var checkpoint = new Measurements("memory checkpoint (freeze + upper copy + CRIU --leave-running)");
        for (var i = 0; i < Math.Min(n, 15); i++)
        {
            await FreezeAndWakeAsync(http, engine, client, server.CanonicalId, freeze, wakeFrozen);
            var start = Stopwatch.GetTimestamp();
            await client.SuspendAsync(server.CanonicalId, hibernate: true);
            hibernate.Add(start);
            start = Stopwatch.GetTimestamp();
            await GetAsync(http, engine, server.CanonicalId);
            wakeHibernated.Add(start);

            start = Stopwatch.GetTimestamp();
            var snap = await client.SnapshotAsync(server.CanonicalId, SnapshotType.Memory);
            checkpoint.Add(start);
            await client.DeleteSnapshotAsync(snap.SnapshotId);
        }

        rows.Add(freeze.Row("runc pause/resume ~4 ms each (reference)"));
        rows.Add(wakeFrozen.Row("< 50 ms; Tensorlake ~0.6 s"));
        rows.Add(hibernate.Row("stop to disk"));
        rows.Add(wakeHibernated.Row("< 300 ms"));
        rows.Add(checkpoint.Row("reference: runc checkpoint ~263 ms"));

        // N=1 and N=8 here; 'bench fork-scaling' adds N=2 and 4 and runs on fewer cores with --cores.
        rows.AddRange(ForkScalingBench.Rows(await ForkScalingBench.MeasureAsync(http, engine, client, server.CanonicalId, Math.Max(3, Math.Min(n, 8)), [1, 8], "")));
        await client.DeleteAsync(server.CanonicalId);
        rows.AddRange(await UserNamespaceRowsAsync(n, repoRoot, http, create, exec, freeze, wakeFrozen));
        return rows;
    }

    /// <summary>
    /// What the blank disks formatted ahead buy a create, measured inside one engine and interleaved (an engine started
    /// after another runs faster on this machine, whichever it is): a create of the default disk size takes a blank
    /// disk, one of a MiB less formats its own on the boot path. The refill's background mkfs runs during
    /// both kinds' neighbours alike.
    /// </summary>
    private static async Task<IEnumerable<string>> BlankDisksRowsAsync(TensorlakeClient client, int n)
    {
        var reserved = new Measurements("create sandbox + run /bin/true, a blank disk made ahead (interleaved with the next row)");
        var formatted = new Measurements("create sandbox + run /bin/true, its disk formatted on the boot path (disk_mb 10239, a size not made ahead)");
        for (var i = 0; i < n; i++)
        {
            foreach (var (measurements, diskMb) in i % 2 == 0 ? new[] { (reserved, 10240), (formatted, 10239) } : [(formatted, 10239), (reserved, 10240)])
            {
                var start = Stopwatch.GetTimestamp();
                var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Resources = new SandboxResources { DiskMb = diskMb } });
                await client.Proxy(created).RunAsync(new RunProcessRequest { Command = "/bin/true" });
                measurements.Add(start);
                await client.DeleteAsync(created.CanonicalId);
            }
        }

        return [reserved.Row(string.Create(CultureInfo.InvariantCulture, $"{reserved.Percentile(50) / formatted.Percentile(50):0.00}x / {reserved.Percentile(95) / formatted.Percentile(95):0.00}x the next row (p50 / p95)")),
            formatted.Row("mkfs.ext4 on the boot path, as with --blank-disks 0")];
    }

    /// <summary>
    /// <c>bench pool</c> alone: cold create + /bin/true, then the pool rows beside it, on an engine of their own.
    /// </summary>
    public static async Task<IEnumerable<string>> RunPoolAsync(int n, string repoRoot)
    {
        await using var bench = await BenchEngine.StartAsync("pool", repoRoot);
        var (create, _) = await CreateAndExecAsync(bench.Client, n, "");
        return [create.Row("< 100 ms; Tensorlake/E2B ~150 ms+"), .. await PoolRowsAsync(bench.Client, n, create)];
    }

    /// <summary>
    /// A warm pool's claim + /bin/true against a cold create + /bin/true (the same resources and image), side by side:
    /// each claim is measured on a pool its refill has filled again since the last one (the steady state a pool is
    /// for); then a claim on a pool with nothing warm, which boots the sandbox for the claim (what a drained pool costs).
    /// </summary>
    private static async Task<IEnumerable<string>> PoolRowsAsync(TensorlakeClient client, int n, Measurements create)
    {
        const int Warm = 2;
        var warm = new Measurements("pool claim (warm) + run /bin/true");
        var empty = new Measurements("pool claim (none warm: boots for the claim) + run /bin/true");
        foreach (var (measurements, warmTarget) in new[] { (warm, Warm), (empty, 0) })
        {
            var pool = (await client.CreatePoolAsync(new SandboxPoolRequest
            {
                Image = "host",
                Resources = new SandboxPoolResources { Cpus = 1.0, MemoryMb = 1024 },
                WarmContainers = warmTarget,
            })).PoolId;
            for (var i = 0; i < n; i++)
            {
                await WaitWarmAsync(client, pool, warmTarget);
                var start = Stopwatch.GetTimestamp();
                var claimed = await client.ClaimAsync(pool);
                await client.Proxy(claimed).RunAsync(new RunProcessRequest { Command = "/bin/true" });
                measurements.Add(start);
                await client.DeleteAsync(claimed.CanonicalId);
            }

            await client.DeletePoolAsync(pool);
        }

        string Versus(Measurements m) => string.Create(CultureInfo.InvariantCulture,
            $"cold create p50 {create.Percentile(50):0.0} / p95 {create.Percentile(95):0.0} ms: {create.Percentile(50) / m.Percentile(50):0.0}x / {create.Percentile(95) / m.Percentile(95):0.0}x faster");
        return [warm.Row(Versus(warm) + " (target ≥ 4x)"), empty.Row(Versus(empty))];
    }

    /// <summary>Polls the pool until its refill has <paramref name="count"/> warm sandboxes booted (at most a minute).</summary>
    private static async Task WaitWarmAsync(TensorlakeClient client, string pool, int count)
    {
        for (var attempt = 0; ; attempt++)
        {
            var containers = (await client.GetPoolAsync(pool)).Containers ?? [];
            if (containers.Count(c => c.IsWarm && c.State == PoolContainerState.Idle) >= count)
            {
                return;
            }

            if (attempt > 12_000)
            {
                throw new TimeoutException($"pool {pool} did not refill to {count} warm sandboxes within a minute");
            }

            await Task.Delay(5);
        }
    }

    /// <summary>
    /// The same operations on an engine started with <c>--userns</c>, side by side with the default's p50: what a user
    /// namespace costs. Hibernation, memory checkpoints and memory forks are off in that mode, so they have no row.
    /// </summary>
    private static async Task<IEnumerable<string>> UserNamespaceRowsAsync(int n, string repoRoot, HttpClient http,
        Measurements create, Measurements exec, Measurements freeze, Measurements wakeFrozen)
    {
        await using var bench = await BenchEngine.StartAsync("engine-userns", repoRoot, o => o.UserNamespace = true);
        var (engine, client) = (bench.Engine, bench.Client);
        var (usernsCreate, usernsExec) = await CreateAndExecAsync(client, n, " (--userns)");
        var server = await StartServerAsync(http, engine, client);
        var usernsFreeze = new Measurements("freeze (runc pause) + thaw (--userns)");
        var usernsWake = new Measurements("wake frozen sandbox via ingress, HTTP answered (--userns)");
        for (var i = 0; i < Math.Min(n, 15); i++)
        {
            await FreezeAndWakeAsync(http, engine, client, server.CanonicalId, usernsFreeze, usernsWake);
        }

        return [.. new[] { (usernsCreate, create), (usernsExec, exec), (usernsFreeze, freeze), (usernsWake, wakeFrozen) }
            .Select(pair => pair.Item1.Row(string.Create(CultureInfo.InvariantCulture, $"{pair.Item1.Percentile(50) / pair.Item2.Percentile(50):0.00}x the default ({pair.Item2.Percentile(50):0.0} ms)")))];
    }

    /// <summary>One freeze + thaw, then a freeze woken by a request through the ingress; leaves the sandbox running.</summary>
    private static async Task FreezeAndWakeAsync(HttpClient http, EngineServer engine, TensorlakeClient client, string serverId, Measurements freeze, Measurements wake)
    {
        var start = Stopwatch.GetTimestamp();
        await client.SuspendAsync(serverId);
        await client.ResumeAsync(serverId);
        freeze.Add(start);
        await client.SuspendAsync(serverId);
        start = Stopwatch.GetTimestamp();
        await GetAsync(http, engine, serverId);
        wake.Add(start);
    }

    private static async Task<(Measurements Create, Measurements Exec)> CreateAndExecAsync(TensorlakeClient client, int n, string label)
    {
        var create = new Measurements("create sandbox + run /bin/true" + label);
        var exec = new Measurements("exec /bin/true in a running sandbox" + label);
        for (var i = 0; i < n; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
            var proxy = client.Proxy(created);
            await proxy.RunAsync(new RunProcessRequest { Command = "/bin/true" });
            create.Add(start);
            start = Stopwatch.GetTimestamp();
            await proxy.RunAsync(new RunProcessRequest { Command = "/bin/true" });
            exec.Add(start);
            await client.DeleteAsync(created.CanonicalId);
        }

        return (create, exec);
    }

    /// <summary>A sandbox serving the in-memory counter on port 8080, answered once through the ingress.</summary>
    internal static async Task<CreateSandboxResponse> StartServerAsync(HttpClient http, EngineServer engine, TensorlakeClient client)
    {
        var server = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "bench-server", ExposedPorts = [8080], TimeoutSecs = 0 });
        var serverProxy = client.Proxy(server);
        await serverProxy.WriteFileAsync("/opt/counter.py", System.Text.Encoding.UTF8.GetBytes(BenchEngine.CounterServer));
        await serverProxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["/opt/counter.py"] });
        await GetAsync(http, engine, server.CanonicalId, retry: true);
        return server;
    }

    internal static async Task GetAsync(HttpClient http, EngineServer engine, string sandboxId, bool retry = false)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, engine.IngressAddress);
            request.Headers.Host = $"8080-{sandboxId}.localhost";
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", BenchEngine.ApiKey);
            using var response = await http.SendAsync(request);
            if (response.IsSuccessStatusCode || !retry || attempt > 400)
            {
                response.EnsureSuccessStatusCode();
                return;
            }

            await Task.Delay(5);
        }
    }
}
