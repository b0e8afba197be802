using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using Hands.Engine;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// How fork from a memory snapshot scales with N and with the cores it has: N = 1, 2, 4, 8 children of one snapshot of a
/// sandbox serving an in-memory counter, all at once, each until it answers through the ingress, with the CPU time
/// per child of the cores it runs on beside each. With <c>--cores K</c> (<see cref="CpuPinning"/>) the same suite runs on fewer cores.
/// </summary>
/// <remarks>
/// A fork costs CPU (CRIU, runc, the network's processes, the engine), so N children on C cores cannot finish before
/// N × (CPU per child) / C: that bound, beside each row, says whether anything but CPU holds a round back, and how
/// many cores would bring N=8 within 2x of one child.
/// </remarks>
[SupportedOSPlatform("linux")]
internal static class ForkScalingBench
{
    /// <summary>One size's measurements: the wall time until every child serves, and the cores' busy CPU time over N.</summary>
    internal sealed record Round(Measurements AllServing, Measurements CpuPerChild);

    public static async Task<IEnumerable<string>> RunAsync(int n, string repoRoot)
    {
        await using var bench = await BenchEngine.StartAsync("fork-scaling", repoRoot);
        if (!bench.Engine.CriuAvailable)
        {
            return [$"| fork scaling | 0 | - | - | skipped: no working CRIU ({bench.Engine.CriuProblem}) |"];
        }

        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero });
        var server = await EngineBench.StartServerAsync(http, bench.Engine, bench.Client);
        var rounds = await MeasureAsync(http, bench.Engine, bench.Client, server.CanonicalId, Math.Max(3, n), [1, 2, 4, 8], "");
        await bench.Client.DeleteAsync(server.CanonicalId);
        return Rows(rounds);
    }

    /// <summary>
    /// Forks <paramref name="sizes"/> children at once from one memory snapshot of <paramref name="serverId"/>,
    /// <paramref name="count"/> rounds, each size once per round. One round of every size runs first and is not
    /// measured: a long-running engine has compiled its fork path, and a fresh one's JIT would otherwise be charged to
    /// whichever size first calls a method often enough to recompile it (the largest).
    /// </summary>
    public static async Task<IReadOnlyDictionary<int, Round>> MeasureAsync(HttpClient http, EngineServer engine, TensorlakeClient client, string serverId, int count,
        IReadOnlyList<int> sizes, string label)
    {
        var rounds = sizes.ToDictionary(size => size, size => new Round(
            new Measurements($"fork N={size} from a memory snapshot, {(size == 1 ? "serving" : "all serving")}{label}"),
            new Measurements($"CPU per fork child in the N={size} rounds (the busy time of the cores the bench may use / {size}){label}")));
        var snapshot = await client.SnapshotAsync(serverId, SnapshotType.Memory);
        for (var i = -1; i < count; i++)
        {
            foreach (var size in sizes)
            {
                var cpuBefore = HostStats.BusyCpu();
                var start = Stopwatch.GetTimestamp();
                var children = await Task.WhenAll(Enumerable.Range(0, size).Select(async _ =>
                {
                    var child = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
                    await EngineBench.GetAsync(http, engine, child.CanonicalId, retry: true);
                    return child.CanonicalId;
                }));
                var elapsed = Stopwatch.GetElapsedTime(start);
                var cpu = HostStats.BusyCpu() - cpuBefore;
                if (i >= 0)
                {
                    rounds[size].AllServing.Add(elapsed);
                    rounds[size].CpuPerChild.Add(cpu / size);
                }

                foreach (var child in children)
                {
                    await client.DeleteAsync(child);
                }

                await SettleAsync();
            }
        }

        await client.DeleteSnapshotAsync(snapshot.SnapshotId);
        return rounds;
    }

    /// <summary>
    /// Waits, at most 3 s, for the cores to be under 20 % busy over 100 ms: the deletes' clean-up and the blank-disk
    /// refill after a round (it waits while any boot is under way) would otherwise be charged to the next round.
    /// </summary>
    private static async Task SettleAsync()
    {
        var window = TimeSpan.FromMilliseconds(100);
        for (var i = 0; i < 30; i++)
        {
            var before = HostStats.BusyCpu();
            await Task.Delay(window);
            if (HostStats.BusyCpu() - before < window * Environment.ProcessorCount * 0.2)
            {
                return;
            }
        }
    }

    /// <summary>
    /// Each size's wall time with its ratio to one child and its CPU floor (N × CPU per child / cores), then its CPU per
    /// child; N=8's note also says how many cores would bring it within 2x of one child at this CPU per child.
    /// </summary>
    public static IEnumerable<string> Rows(IReadOnlyDictionary<int, Round> rounds)
    {
        if (!rounds.TryGetValue(1, out var oneChild))
        {
            throw new ArgumentException("the ratios are to one child: the sizes must include 1", nameof(rounds));
        }

        var cores = Environment.ProcessorCount;
        var one = oneChild.AllServing.Percentile(50);
        foreach (var (size, round) in rounds.OrderBy(r => r.Key))
        {
            var cpu = round.CpuPerChild.Percentile(50);
            // CPU is counted in 10 ms ticks: a p50 of 0 has no floor to compare with.
            var floor = size * cpu / cores;
            var versusFloor = floor > 0 ? string.Create(CultureInfo.InvariantCulture, $"{round.AllServing.Percentile(50) / floor:0.00}x it") : "no CPU counted";
            var note = size == 1
                ? string.Create(CultureInfo.InvariantCulture, $"one child; its CPU is {cpu / one:0.00} of one core over that time")
                : string.Create(CultureInfo.InvariantCulture,
                    $"{round.AllServing.Percentile(50) / one:0.0}x one child; CPU floor {size} x {cpu:0} / {cores} cores = {floor:0} ms ({versusFloor})");
            if (size == 8)
            {
                note = "< 1500 ms (ARCHITECTURE.md); " + note + string.Create(CultureInfo.InvariantCulture,
                    $"; within 2x of one child needs 8 x {cpu:0} / (2 x {one:0}) = {CoresForTwiceOneChild(size, cpu, one):0.0} cores or more");
            }

            yield return round.AllServing.Row(note);
            yield return round.CpuPerChild.Row("CPU time (the kernel's included), not wall time");
        }
    }

    /// <summary>
    /// The cores N children need to finish within twice one child's time, if nothing but CPU holds them back:
    /// N × CPU per child / cores ≤ 2 × one child's time.
    /// </summary>
    internal static double CoresForTwiceOneChild(int size, double cpuPerChildMs, double oneChildMs) => size * cpuPerChildMs / (2 * oneChildMs);
}
