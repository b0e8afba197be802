using System.Net;
using System.Net.Sockets;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>Sandboxes cannot reach each other or read each other's files; the egress policy is enforced in each namespace.</summary>
[Collection(EngineCollection.Name)]
public sealed class IsolationTests(EngineFixture engine)
{
    [Fact]
    public async Task A_sandbox_can_neither_reach_another_sandbox_nor_see_its_files()
    {
        await using var a = await engine.CreateAsync();
        await using var b = await engine.CreateAsync();
        await b.Proxy.WriteFileAsync("/workspace/secret.txt", "b's secret"u8.ToArray());
        var bAddress = (await b.RunAsync("ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4 | cut -d/ -f1")).Stdout.Trim();
        Assert.StartsWith("10.200.", bAddress, StringComparison.Ordinal);

        // b's daemon listens on 9501: reaching it from a would be a breach.
        var probe = await a.RunAsync($"timeout 5 bash -c 'echo > /dev/tcp/{bAddress}/9501' && echo reached || echo blocked");
        Assert.Equal("blocked", probe.Stdout.Trim());
        var search = await a.RunAsync("grep -rs \"b's secret\" /workspace /tmp /root /opt; ls /workspace");
        Assert.DoesNotContain("secret", search.Stdout, StringComparison.Ordinal);
        var env = await a.RunAsync("env");
        Assert.DoesNotContain(EngineFixture.ApiKey, env.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_egress_policy_decides_in_the_namespace_and_the_host_answers_only_its_forwarded_ports()
    {
        await using var sandbox = await engine.CreateAsync();
        var gateway = IPAddress.Parse((await sandbox.RunAsync("ip route | grep default | cut -d' ' -f3")).Stdout.Trim());
        using var listener = new TcpListener(gateway, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var connect = $"timeout 5 bash -c 'echo > /dev/tcp/{gateway}/{port}' && echo reached || echo blocked";
        var forwarded = $"timeout 5 bash -c 'echo > /dev/tcp/host.hands.internal/{engine.Engine.ApiAddress.Port}' && echo reached || echo blocked";

        // The policy lets it through (no rule in the namespace refuses it); the host does not serve unforwarded ports.
        await AssertRefusedAsync(sandbox, connect, byPolicy: false);
        Assert.Equal("reached", (await sandbox.RunAsync(forwarded)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { DenyOut = [gateway.ToString()] } });
        await AssertRefusedAsync(sandbox, connect, byPolicy: true);

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { AllowInternetAccess = false } });
        await AssertRefusedAsync(sandbox, connect, byPolicy: true);
        Assert.Equal("reached", (await sandbox.RunAsync(forwarded)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { AllowInternetAccess = false, AllowOut = [$"{gateway}/32"] } });
        await AssertRefusedAsync(sandbox, connect, byPolicy: false);

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { ClearNetwork = true });
        await AssertRefusedAsync(sandbox, connect, byPolicy: false);
        Assert.False(listener.Pending(), "a host port that is not forwarded was reached from the sandbox");
    }

    /// <summary>The connection fails, and the namespace's own REJECT rules counted it (policy) or did not (host side).</summary>
    private async Task AssertRefusedAsync(TestSandbox sandbox, string connect, bool byPolicy)
    {
        var before = await PolicyRejectsAsync(sandbox.Id);
        Assert.Equal("blocked", (await sandbox.RunAsync(connect)).Stdout.Trim());
        var after = await PolicyRejectsAsync(sandbox.Id);
        Assert.True(byPolicy ? after > before : after == before, $"the namespace's REJECT rules counted {after - before} packet(s); expected {(byPolicy ? "some" : "none")}");
    }

    /// <summary>Packets the sandbox namespace's egress REJECT rules refused so far (iptables-save -c counters).</summary>
    private async Task<long> PolicyRejectsAsync(string sandboxId)
    {
        var save = await Hosting.CommandRunner.RunCheckedAsync("nsenter", [$"--net={Path.Combine(engine.DataDirectory, "netns", sandboxId)}", "iptables-save", "-c"]);
        return save.Stdout.Split('\n')
            .Where(l => l.Contains("-j REJECT", StringComparison.Ordinal) && (l.Contains(" -A OUTPUT ", StringComparison.Ordinal) || l.Contains(" -A HANDS-POLICY ", StringComparison.Ordinal)))
            .Sum(l => long.Parse(l[1..l.IndexOf(':', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture));
    }
}
