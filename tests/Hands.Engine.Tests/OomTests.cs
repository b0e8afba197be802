using System.Globalization;
using Hands.Common;
using Hands.Engine.Tests.Orchestration;
using Hands.Orchestrator;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Xunit.Abstractions;

namespace Hands.Engine.Tests;

/// <summary>
/// A sandbox with a small memory limit runs commands that allocate past it: the kernel's OOM killer (the cgroup's, a
/// real one) kills them mid-command. The result says so (signal 9, <c>oom_killed</c>), a <c>kill -9</c> is not
/// mistaken for it, the daemon and the worker survive — also when the daemon is the largest process in the sandbox,
/// which is what the OOM killer would take by size alone — and the next command runs.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class OomTests(EngineFixture engine, ITestOutputHelper output)
{
    [Fact]
    public async Task A_command_killed_for_memory_is_reported_as_oom_killed_and_the_sandbox_serves_on()
    {
        await using var box = await engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { MemoryMb = 256 } });
        var daemon = await DaemonPidAsync(box);
        Assert.Equal("0", await ReadAsync(box, $"/proc/{daemon}/oom_score_adj"));
        Assert.Equal("1000", (await box.RunAsync("cat /proc/self/oom_score_adj")).Stdout);
        // Down to 0 is a process's own business; below it takes CAP_SYS_RESOURCE, which sandbox root does not hold.
        Assert.Equal("0", (await box.RunAsync("echo 0 > /proc/self/oom_score_adj && cat /proc/self/oom_score_adj")).Stdout);
        var lower = await box.RunAsync("echo -1 > /proc/self/oom_score_adj");
        Assert.Contains("Permission denied", lower.Stderr, StringComparison.Ordinal);

        // Through /processes/run: the exit frame.
        var run = await box.Proxy.RunAsync(new RunProcessRequest { Command = "dd", Args = ["if=/dev/zero", "of=/dev/null", "bs=512M", "count=1"] });
        Assert.Equal((-9, 9, true), (run.ExitCode, run.Signal, run.OomKilled));

        // Through a started process: its status.
        var started = await box.Proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["-c", "held = b'x' * (512 << 20)"] });
        var ended = await EndedAsync(box.Proxy, started.Pid);
        Assert.Equal(("oom_killed", 9, true, (int?)null), (ended.Status, ended.Signal, ended.OomKilled, ended.ExitCode));

        // A kill -9 from inside is a signal, not memory.
        var sleeper = await box.Proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["1000"] });
        await box.RunAsync($"kill -9 {sleeper.Pid}");
        var killed = await EndedAsync(box.Proxy, sleeper.Pid);
        Assert.Equal(("signaled", 9, false), (killed.Status, killed.Signal, killed.OomKilled));

        // The daemon is the one it was, and serves the next command.
        Assert.Equal(daemon, await DaemonPidAsync(box));
        Assert.Equal("next", (await box.RunAsync("echo next")).Stdout);

        // The cgroup the sandbox reads is its own, and read-only even to its root: it cannot raise its limit.
        Assert.Equal((256L << 20).ToString(CultureInfo.InvariantCulture), await ReadAsync(box, SandboxMemoryCgroup.MountPoint + "/memory.limit_in_bytes"));
        var raise = await box.RunAsync($"echo {2L << 30} > {SandboxMemoryCgroup.MountPoint}/memory.limit_in_bytes");
        Assert.NotEqual(0, raise.ExitCode);
        Assert.Contains("Read-only file system", raise.Stderr, StringComparison.Ordinal);
        Assert.Equal((256L << 20).ToString(CultureInfo.InvariantCulture), await ReadAsync(box, SandboxMemoryCgroup.MountPoint + "/memory.limit_in_bytes"));
    }

    /// <summary>
    /// By size alone the OOM killer takes the largest process: here the daemon, with holders each smaller than it
    /// filling the cgroup. The holders' score (1000, set by the daemon) makes one of them the victim instead.
    /// </summary>
    [Fact]
    public async Task The_daemon_survives_an_oom_even_when_it_is_the_largest_process_in_the_sandbox()
    {
        await using var box = await engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { MemoryMb = 128 } });
        var daemon = await DaemonPidAsync(box);
        var daemonRss = await RssKbAsync(box, daemon);
        var idle = await box.Proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["-c", "import time\nprint('holding', flush=True)\ntime.sleep(1e6)"] });
        await Eventually.TrueAsync(async () => (await box.Proxy.GetOutputAsync(idle.Pid.ToString(CultureInfo.InvariantCulture))).Lines.Contains("holding"), "python to start");
        var pythonRss = await RssKbAsync(box, idle.Pid);
        await box.Proxy.KillProcessAsync(idle.Pid.ToString(CultureInfo.InvariantCulture));
        // Each holder ends up 4 MiB smaller than the daemon.
        var holdKb = daemonRss - pythonRss - 4096;
        output.WriteLine($"daemon {daemonRss} kB, an idle python {pythonRss} kB: each holder holds {holdKb} kB more");
        Assert.True(holdKb >= 1024, $"the daemon ({daemonRss} kB) is not larger than a python holding 1 MiB ({pythonRss} kB + 1024 kB); no holder can be smaller than it");

        var holders = new List<int>();
        // Counted by what each holder adds (its bytes), not its RSS: file-backed pages (the interpreter, shared page cache)
        // are in RSS but barely charged to the sandbox, so RSS-counted holders might never fill it. Stops at the first OOM.
        for (var i = 0; i < (128 << 10) / holdKb + 8 && !await AnyOomKilledAsync(box, holders); i++)
        {
            var holder = await box.Proxy.StartProcessAsync(new StartProcessRequest
            {
                Command = "python3",
                Args = ["-c", $"import time\nheld = b'x' * ({holdKb} << 10)\nprint('holding', flush=True)\ntime.sleep(1e6)"],
            });
            holders.Add(holder.Pid);
            var pid = holder.Pid.ToString(CultureInfo.InvariantCulture);
            await Eventually.TrueAsync(async () => (await box.Proxy.GetOutputAsync(pid)).Lines.Contains("holding") || (await box.Proxy.GetProcessAsync(pid)).Status != "running",
                $"holder {i} to hold its memory or die");
            if (i == 0)
            {
                // The scenario is what it claims (measured while there is room to run the measurement): a holder is smaller than the daemon.
                var holderRss = await RssKbAsync(box, holder.Pid);
                output.WriteLine($"a holder: {holderRss} kB");
                Assert.True(holderRss < daemonRss, $"a holder ({holderRss} kB) is not smaller than the daemon ({daemonRss} kB)");
            }
        }

        var states = new List<ProcessInfo>();
        foreach (var pid in holders)
        {
            states.Add(await box.Proxy.GetProcessAsync(pid.ToString(CultureInfo.InvariantCulture)));
        }

        output.WriteLine(string.Join(", ", states.Select(s => $"{s.Pid}:{s.Status}")));
        Assert.Contains(states, s => s.Status == "oom_killed");
        Assert.All(states, s => Assert.Contains(s.Status, new[] { "running", "oom_killed" }));
        // Room again (through the daemon, which needs no new process for it), then the daemon is the one it was and serves on.
        foreach (var running in states.Where(s => s.Status == "running"))
        {
            await box.Proxy.KillProcessAsync(running.Pid.ToString(CultureInfo.InvariantCulture));
        }

        Assert.Equal(daemon, await DaemonPidAsync(box));
        Assert.Equal("next", (await box.RunAsync("echo next")).Stdout);
    }

    /// <summary>The worker's bash tool, in a session's sandbox with a 256 MiB limit: the command dies, the agent is told why, the worker and its shell run on.</summary>
    [Fact]
    public async Task The_bash_tool_says_a_command_ran_out_of_memory_and_the_worker_runs_the_next()
    {
        const string scenario = """
            {"turns":[{"steps":[
              {"tool":"bash","input":{"command":"echo bash=$(cat /proc/$$/oom_score_adj) worker=$(cat /proc/$PPID/oom_score_adj)"}},
              {"tool":"bash","input":{"command":"python3 -c \"held = b'x' * (512 << 20)\""}},
              {"tool":"bash","input":{"command":"echo still here"}},
              {"message":"done"}
            ]}]}
            """;
        await using var cp = await LocalControlPlane.StartAsync(engine, "oom", scenario);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o => o.MemoryMb = 256));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        var name = SandboxNames.ForSession(session);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "allocate too much"));
            var results = await cp.ToolResultsAsync(session);
            output.WriteLine(string.Join("\n---\n", results));
            Assert.Equal(3, results.Count);
            Assert.Equal("bash=1000 worker=0", results[0].Trim());
            Assert.Contains("out of memory: the sandbox ran out of memory (its limit is 256 MiB) and the kernel's OOM killer killed a process of this command", results[1], StringComparison.Ordinal);
            Assert.Contains("exit 137", results[1], StringComparison.Ordinal);
            Assert.Equal("still here", results[2].Trim());
            await orchestrator.WhenIdleAsync();
            Assert.Equal(1, orchestrator.SpawnedCount);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(name);
        }
    }

    private static async Task<ProcessInfo> EndedAsync(SandboxProxyClient proxy, int pid)
    {
        ProcessInfo info = null!;
        await Eventually.TrueAsync(async () => (info = await proxy.GetProcessAsync(pid.ToString(CultureInfo.InvariantCulture))).Status != "running", $"process {pid} to end");
        return info;
    }

    /// <summary>The pid of hands-sandboxd inside the sandbox.</summary>
    private static async Task<int> DaemonPidAsync(TestSandbox box) => int.Parse(
        (await box.RunAsync("for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = hands-sandboxd ] && echo ${p#/proc/}; done")).Stdout.Trim(), CultureInfo.InvariantCulture);

    private static async Task<string> ReadAsync(TestSandbox box, string path) => (await box.RunAsync($"cat {path}")).Stdout.Trim();

    private static async Task<long> RssKbAsync(TestSandbox box, int pid) =>
        long.Parse((await box.RunAsync($"awk '/^VmRSS:/ {{print $2}}' /proc/{pid}/status")).Stdout.Trim(), CultureInfo.InvariantCulture);

    private static async Task<bool> AnyOomKilledAsync(TestSandbox box, List<int> pids)
    {
        foreach (var pid in pids)
        {
            if ((await box.Proxy.GetProcessAsync(pid.ToString(CultureInfo.InvariantCulture))).Status == "oom_killed")
            {
                return true;
            }
        }

        return false;
    }
}
