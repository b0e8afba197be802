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
    public async Task The_egress_policy_decides_whether_the_gateway_answers_and_can_be_changed_live()
    {
        await using var sandbox = await engine.CreateAsync();
        var gateway = IPAddress.Parse((await sandbox.RunAsync("ip route | grep default | cut -d' ' -f3")).Stdout.Trim());
        using var listener = new TcpListener(gateway, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var connect = $"timeout 5 bash -c 'echo > /dev/tcp/{gateway}/{port}' && echo reached || echo blocked";
        Assert.Equal("reached", (await sandbox.RunAsync(connect)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { DenyOut = [gateway.ToString()] } });
        Assert.Equal("blocked", (await sandbox.RunAsync(connect)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { AllowInternetAccess = false } });
        Assert.Equal("blocked", (await sandbox.RunAsync(connect)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { Network = new NetworkPolicy { AllowInternetAccess = false, AllowOut = [$"{gateway}/32"] } });
        Assert.Equal("reached", (await sandbox.RunAsync(connect)).Stdout.Trim());

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { ClearNetwork = true });
        Assert.Equal("reached", (await sandbox.RunAsync(connect)).Stdout.Trim());
    }
}
