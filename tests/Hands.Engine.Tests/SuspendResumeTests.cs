using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Engine.Tests;

/// <summary>Both suspend tiers keep a process's memory; the ingress wakes a sandbox; only inbound traffic keeps one awake.</summary>
[Collection(EngineCollection.Name)]
public sealed class SuspendResumeTests(EngineFixture engine)
{
    private static readonly TimeSpan StateDeadline = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(false, "frozen")]
    [InlineData(true, "hibernated")]
    public async Task Suspend_and_resume_keep_a_running_process_and_its_memory(bool hibernate, string tier)
    {
        await using var sandbox = await engine.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("tier")));
        await SandboxWorkloads.StartCounterAsync(engine.Engine, sandbox);
        await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc");
        await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc");

        Assert.True(await engine.Client.SuspendAsync(sandbox.Id, hibernate));
        var suspended = await engine.Client.GetAsync(sandbox.Id);
        Assert.Equal((SandboxStatus.Suspended, tier), (suspended.Status, suspended.SuspendTier));
        Assert.False(await engine.Client.SuspendAsync(sandbox.Id, hibernate), "suspending a suspended sandbox answers 200");

        Assert.True(await engine.Client.ResumeAsync(sandbox.Id));
        Assert.False(await engine.Client.ResumeAsync(sandbox.Id), "resuming a running sandbox answers 200");
        Assert.Equal(3, await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc"));
    }

    [Fact]
    public async Task A_request_through_the_ingress_wakes_a_hibernated_sandbox_and_is_answered()
    {
        await using var sandbox = await engine.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("wake")));
        await SandboxWorkloads.StartCounterAsync(engine.Engine, sandbox);
        await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc");
        await engine.Client.SuspendAsync(sandbox.Id, hibernate: true);

        Assert.Equal(2, await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc"));
        Assert.Equal(SandboxStatus.Running, (await engine.Client.GetAsync(sandbox.Id)).Status);

        await engine.Client.SuspendAsync(sandbox.Id);
        var api = await sandbox.Proxy.RunAsync(new RunProcessRequest { Command = "true" });
        Assert.Equal(0, api.ExitCode);
        Assert.Equal(SandboxStatus.Running, (await engine.Client.GetAsync(sandbox.Id)).Status);
    }

    /// <summary>
    /// An outside and a loopback connection to an echo server in the sandbox (<see cref="EchoPair"/>) both survive a
    /// hibernation and a wake, so neither end saw a reset, even for a line sent while it slept; meanwhile its veth's
    /// host end is down, so nothing from outside reaches its namespace (where no socket would answer but with a reset),
    /// and the host's route for its address is the engine's blackhole, not the default route.
    /// </summary>
    [Fact]
    public async Task A_hibernation_keeps_established_connections_from_outside_and_inside_the_sandbox()
    {
        await using var sandbox = await engine.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("conns")));
        using var echo = await EchoPair.StartAsync(engine.Engine, sandbox);
        var slot = engine.Engine.Sandboxes.SlotOf(engine.Engine.Sandboxes.FindAlive(sandbox.Id)!);
        var (hostEnd, address) = (slot.HostInterface, slot.SandboxAddress);

        Assert.True(await engine.Client.SuspendAsync(sandbox.Id, hibernate: true));
        Assert.Equal("down", File.ReadAllText($"/sys/class/net/{hostEnd}/operstate").Trim());
        // The host's packets for it meet the blackhole route (a route lookup the kernel answers EINVAL), never the
        // default route to a real network.
        var lookup = await Hands.Engine.Hosting.CommandRunner.RunAsync("ip", ["route", "get", address.ToString()]);
        Assert.True(lookup.ExitCode != 0 && lookup.Stderr.Contains("Invalid argument", StringComparison.Ordinal), lookup.Stdout + lookup.Stderr);
        Assert.StartsWith("blackhole 10.200.0.0/16", (await Hands.Engine.Hosting.CommandRunner.RunCheckedAsync("ip", ["route", "show", "exact", "10.200.0.0/16"])).Stdout.Trim(), StringComparison.Ordinal);
        // Sent while it sleeps: held in this side's retransmission queue, answered after the wake.
        var early = echo.EchoAsync("while asleep");
        Assert.True(await engine.Client.ResumeAsync(sandbox.Id));
        Assert.Equal("while asleep", await early);
        await echo.AssertBothTalkAsync("after");
    }

    [Fact]
    public async Task A_wake_restores_from_CRIUs_kernel_feature_cache_even_where_run_is_not_a_tmpfs()
    {
        // Gone before the engine starts: only the engine's start (or CRIU itself, where /run is a tmpfs) can bring it back.
        File.Delete("/run/criu.kdat");
        await using var own = await OwnEngine.StartAsync("hands-engine-kdat", _ => { });
        var created = await own.Client.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("kdat")));
        await using var sandbox = new TestSandbox(own.Client, created.CanonicalId, own.Client.Proxy(created));
        await SandboxWorkloads.StartCounterAsync(own.Server, sandbox);
        await SandboxWorkloads.CounterAsync(own.Server, sandbox.Id, "/inc");
        await own.Client.SuspendAsync(sandbox.Id, hibernate: true);

        Assert.Equal(2, await SandboxWorkloads.CounterAsync(own.Server, sandbox.Id, "/inc"));
        var restoreLog = await File.ReadAllTextAsync(Path.Combine(own.Server.Sandboxes.PathsOf(sandbox.Id).CriuWork, "restore.log"));
        Assert.Contains("Loaded kdat cache from /run/criu.kdat", restoreLog, StringComparison.Ordinal);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode("/run/criu.kdat"));
    }

    [Fact]
    public async Task Only_inbound_traffic_holds_the_idle_timer_outbound_traffic_does_not()
    {
        // The engine's idle clock is a fake one the test moves, and the test runs each idle pass itself: no race between
        // a real timeout and real requests.
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var own = await OwnEngine.StartAsync("hands-engine-idle", o =>
        {
            o.TimeProvider = clock;
            o.IdleCheckInterval = TimeSpan.FromDays(1);
        });
        var created = await own.Client.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("idle"), timeoutSecs: 2));
        await using var sandbox = new TestSandbox(own.Client, created.CanonicalId, own.Client.Proxy(created));
        await SandboxWorkloads.StartCounterAsync(own.Server, sandbox);

        // An inbound request in every 1.5 s of the 2 s timeout, for three timeouts: it stays up.
        for (var round = 0; round < 4; round++)
        {
            await SandboxWorkloads.CounterAsync(own.Server, sandbox.Id, "/inc");
            clock.Advance(TimeSpan.FromSeconds(1.5));
            await own.Server.Sandboxes.IdleTickAsync(CancellationToken.None);
            Assert.Equal(SandboxStatus.Running, (await own.Client.GetAsync(sandbox.Id)).Status);
        }

        // Now only the sandbox talks (to its own gateway, inside the engine's namespace), counting its attempts in a
        // file the test reads from the host (a read through the ingress would itself count as inbound traffic).
        var gateway = (await sandbox.RunAsync("ip route | grep default | cut -d' ' -f3")).Stdout.Trim();
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "bash", Args = ["-c",
            $"mkdir -p /workspace; for i in $(seq 1 600); do echo $i > /workspace/outbound; timeout 0.2 bash -c 'echo x > /dev/tcp/{gateway}/9' 2>/dev/null; done"] });
        var counter = Path.Combine(own.Server.Sandboxes.PathsOf(sandbox.Id).RootFs, "workspace", "outbound");
        clock.Advance(TimeSpan.FromSeconds(2.5));
        var before = await OutboundCountAsync(counter, 0);
        await OutboundCountAsync(counter, before + 3); // outbound traffic after the idle time ran out
        await own.Server.Sandboxes.IdleTickAsync(CancellationToken.None);
        var suspended = await own.Client.GetAsync(sandbox.Id);
        Assert.Equal((SandboxStatus.Suspended, "frozen"), (suspended.Status, suspended.SuspendTier));
    }

    /// <summary>Waits until the sandbox's outbound loop has counted past <paramref name="atLeast"/>; answers the count.</summary>
    private static async Task<int> OutboundCountAsync(string counter, int atLeast)
    {
        for (var i = 0; ; i++)
        {
            if (File.Exists(counter) && int.TryParse((await File.ReadAllTextAsync(counter)).Trim(), out var count) && count >= atLeast)
            {
                return count;
            }

            Assert.True(i < 600, $"the sandbox's outbound loop did not reach {atLeast}");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task An_idle_ephemeral_sandbox_terminates_and_cannot_be_suspended()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { TimeoutSecs = 1 });
        var refused = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.SuspendAsync(sandbox.Id));
        Assert.Equal(400, refused.Status);
        Assert.Contains("ephemeral", refused.ErrorMessage, StringComparison.Ordinal);

        var ended = await engine.Client.WaitForStatusAsync(sandbox.Id, [SandboxStatus.Terminated], StateDeadline, TimeSpan.FromMilliseconds(200));
        Assert.Equal("Timeout", ended.TerminationReason);
    }
}
