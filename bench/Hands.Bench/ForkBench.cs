using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text;
using Hands.Engine;
using Hands.Forking;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Bench;

/// <summary>
/// Fork-and-explore on the real engine: a parent serving an in-memory counter is checkpointed (memory), then N = 1,
/// 2, 4, 8, 16, 32 children each run a command that reads the restored counter. Measured from the snapshot being ready to
/// every child's command having finished, all at once and one at a time (parallelism 1), in the same run.
/// </summary>
[SupportedOSPlatform("linux")]
internal static class ForkBench
{
    /// <summary>Reads the restored counter with bash's /dev/tcp: the fork is measured, not an interpreter's start-up.</summary>
    private const string ReadCounter = "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && tail -n 1 <&3";

    public static async Task<IEnumerable<string>> RunAsync(int n, string repoRoot)
    {
        await using var bench = await BenchEngine.StartAsync("fork", repoRoot);
        if (!bench.Engine.CriuAvailable)
        {
            return [$"| fork-explore | 0 | - | - | skipped: no working CRIU ({bench.Engine.CriuProblem}) |"];
        }

        var client = bench.Client;
        var explorer = new ForkExplorer(client);
        var rows = new List<string>();
        var parent = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
        var proxy = client.Proxy(parent);
        await proxy.WriteFileAsync("/opt/counter.py", Encoding.UTF8.GetBytes(BenchEngine.CounterServer));
        await proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["/opt/counter.py"], Name = "counter" });
        for (var attempt = 0; (await proxy.RunAsync(new RunProcessRequest { Command = "bash", Args = ["-c", ReadCounter] })).ExitCode != 0; attempt++)
        {
            if (attempt > 100)
            {
                throw new InvalidOperationException("the counter did not start");
            }

            await Task.Delay(50);
        }

        var checkpoint = new Measurements("memory checkpoint of the parent (before every exploration)");
        // N = 16 and 32 all at once only (one at a time they would take most of the suite's time), and on fewer rounds;
        // the whole suite stops starting rounds after ten minutes.
        var sizes = new[] { 1, 2, 4, 8, 16, 32 };
        const int SequentialUpTo = 8;
        var deadline = Stopwatch.GetTimestamp() + 600 * Stopwatch.Frequency;
        var parallel = sizes.ToDictionary(s => s, s => new Measurements($"fork N={s}, all at once: snapshot ready → every child ran its command"));
        var sequential = sizes.Where(s => s <= SequentialUpTo).ToDictionary(s => s, s => new Measurements($"fork N={s}, one at a time"));
        for (var i = 0; i < n && Stopwatch.GetTimestamp() < deadline; i++)
        {
            foreach (var size in sizes.Where(s => s <= SequentialUpTo || i < Math.Max(3, n / 2)))
            {
                foreach (var (degree, into) in size <= SequentialUpTo ? new[] { (size, parallel[size]), (1, sequential[size]) } : [(size, parallel[size])])
                {
                    var branches = Enumerable.Range(0, size).Select(b => new ForkBranch($"b{b}", $"bash -c '{ReadCounter.Replace("'", "'\\''", StringComparison.Ordinal)}'")).ToList();
                    var result = await explorer.ExploreAsync(parent.CanonicalId, branches, new ForkExploreOptions
                    {
                        SnapshotType = SnapshotType.Memory,
                        MaxParallelism = degree,
                    });
                    if (result.Branches.Any(b => !b.Passed))
                    {
                        throw new InvalidOperationException("a bench branch failed: " + string.Join("; ", result.Branches.Select(b => $"{b.Name} {b.State} {b.Error}")));
                    }

                    checkpoint.Add(result.CheckpointTime);
                    // To the last command's end; terminating finished children is not counted.
                    into.Add(result.Branches.Max(b => b.FinishedAfter!.Value) - result.CheckpointTime);
                }
            }
        }

        rows.Add(checkpoint.Row("paused for the capture, then runs on"));
        var one = parallel[1].Percentile(50);
        foreach (var size in sizes)
        {
            var scaling = string.Create(CultureInfo.InvariantCulture, $"{parallel[size].Percentile(50) / one:0.00}x N=1");
            rows.Add(parallel[size].Row(size switch
            {
                1 => "",
                8 => $"{scaling} (target ≤ 2x); < 1500 ms (ARCHITECTURE.md: fork N=8 all serving)",
                _ => scaling,
            }));
            if (sequential.TryGetValue(size, out var oneAtATime))
            {
                rows.Add(oneAtATime.Row(string.Create(CultureInfo.InvariantCulture, $"{oneAtATime.Percentile(50) / parallel[size].Percentile(50):0.0}x the parallel p50")));
            }
        }

        return rows;
    }
}
