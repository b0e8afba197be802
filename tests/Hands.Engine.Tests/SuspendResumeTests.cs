using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

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

    [Fact]
    public async Task Only_inbound_traffic_holds_the_idle_timer_outbound_traffic_does_not()
    {
        await using var sandbox = await engine.CreateAsync(SandboxWorkloads.Exposed(SandboxWorkloads.UniqueName("idle"), timeoutSecs: 2));
        await SandboxWorkloads.StartCounterAsync(engine.Engine, sandbox);

        // Inbound requests every 200 ms for three timeouts: it stays up.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(6);
        while (DateTime.UtcNow < until)
        {
            await SandboxWorkloads.CounterAsync(engine.Engine, sandbox.Id, "/inc");
            await Task.Delay(200);
        }

        Assert.Equal(SandboxStatus.Running, (await engine.Client.GetAsync(sandbox.Id)).Status);

        // Now only the sandbox talks (to its own gateway, inside the engine's namespace): it suspends anyway.
        var gateway = (await sandbox.RunAsync("ip route | grep default | cut -d' ' -f3")).Stdout.Trim();
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "bash", Args = ["-c", $"for i in $(seq 1 600); do (echo x > /dev/tcp/{gateway}/9) 2>/dev/null; sleep 0.1; done"] });
        var suspended = await engine.Client.WaitForStatusAsync(sandbox.Id, [SandboxStatus.Suspended], StateDeadline, TimeSpan.FromMilliseconds(200));
        Assert.Equal("frozen", suspended.SuspendTier);
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
