using System.Text;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>Snapshots of both types, then N=4 forks that start from the parent's state and diverge independently.</summary>
[Collection(EngineCollection.Name)]
public sealed class SnapshotForkTests(EngineFixture engine)
{
    /// <summary>
    /// A memory checkpoint holds the network still with the parent's veth down while CRIU dumps: the parent's outside
    /// and loopback connections (<see cref="EchoPair"/>) talk on afterwards, and its veth is up again.
    /// </summary>
    [Fact]
    public async Task A_memory_checkpoint_keeps_the_parents_established_connections()
    {
        await using var parent = await engine.CreateAsync();
        using var echo = await EchoPair.StartAsync(engine.Engine, parent);
        var snapshot = await engine.Client.SnapshotAsync(parent.Id, SnapshotType.Memory);
        try
        {
            var hostEnd = engine.Engine.Sandboxes.SlotOf(engine.Engine.Sandboxes.FindAlive(parent.Id)!).HostInterface;
            Assert.Equal("up", File.ReadAllText($"/sys/class/net/{hostEnd}/operstate").Trim());
            await echo.AssertBothTalkAsync("after the checkpoint");
        }
        finally
        {
            await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
        }
    }

    [Fact]
    public async Task Filesystem_snapshot_forks_into_four_children_with_their_own_files_addresses_and_identity()
    {
        await using var parent = await engine.CreateAsync();
        await parent.Proxy.WriteFileAsync("/workspace/state.txt", Encoding.UTF8.GetBytes("parent"));
        await parent.RunAsync("rm /etc/nsswitch.conf");
        var snapshot = await engine.Client.SnapshotAsync(parent.Id, SnapshotType.Filesystem);
        Assert.Equal(SnapshotStatus.LocalReady, (await engine.Client.GetSnapshotAsync(snapshot.SnapshotId)).Status);

        var children = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId })));
        try
        {
            await Task.WhenAll(children.Select((child, i) => child.Proxy.WriteFileAsync("/workspace/state.txt", Encoding.UTF8.GetBytes($"child {i}"))));
            await parent.Proxy.WriteFileAsync("/workspace/parent-only.txt", Encoding.UTF8.GetBytes("later"));
            var addresses = new HashSet<string>();
            for (var i = 0; i < children.Length; i++)
            {
                var seen = await children[i].RunAsync("cat /workspace/state.txt; echo; hostname; ls /workspace; test -e /etc/nsswitch.conf && echo deletion-lost || echo deletion-kept; ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4");
                var lines = seen.Stdout.Split('\n');
                Assert.Equal($"child {i}", lines[0]);
                Assert.Equal(children[i].Id, lines[1]);
                Assert.DoesNotContain("parent-only.txt", seen.Stdout, StringComparison.Ordinal);
                Assert.Contains("deletion-kept", seen.Stdout, StringComparison.Ordinal);
                Assert.True(addresses.Add(lines[^1]), "each fork has its own address: " + seen.Stdout + seen.Stderr);
            }

            Assert.Equal("parent", Encoding.UTF8.GetString(await parent.Proxy.ReadFileAsync("/workspace/state.txt")));
        }
        finally
        {
            foreach (var child in children)
            {
                await child.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Memory_snapshot_forks_keep_a_running_process_and_its_memory_and_then_diverge()
    {
        Assert.True(engine.Engine.CriuAvailable, engine.Engine.CriuProblem);
        await using var parent = await engine.CreateAsync(SandboxWorkloads.Exposed());
        await SandboxWorkloads.StartCounterAsync(engine.Engine, parent, count: 3);

        var snapshot = await engine.Client.SnapshotAsync(parent.Id, SnapshotType.Memory);
        var children = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId })));
        try
        {
            for (var i = 0; i < children.Length; i++)
            {
                Assert.Equal(3, await SandboxWorkloads.CounterAsync(engine.Engine, children[i].Id, "/"));
                for (var n = 0; n <= i; n++)
                {
                    await SandboxWorkloads.CounterAsync(engine.Engine, children[i].Id, "/inc");
                }

                await children[i].Proxy.WriteFileAsync("/workspace/mine.txt", Encoding.UTF8.GetBytes(children[i].Id));
            }

            Assert.Equal(4, await SandboxWorkloads.CounterAsync(engine.Engine, parent.Id, "/inc"));
            for (var i = 0; i < children.Length; i++)
            {
                Assert.Equal(3 + i + 1, await SandboxWorkloads.CounterAsync(engine.Engine, children[i].Id, "/"));
                Assert.Equal(children[i].Id, Encoding.UTF8.GetString(await children[i].Proxy.ReadFileAsync("/workspace/mine.txt")));
                // The restored daemon still knows the process it started before the snapshot.
                var processes = await children[i].Proxy.ListProcessesAsync();
                Assert.Contains(processes, p => p.Command == "python3" && p.Status == "running");
            }

            var parentFiles = await parent.Proxy.ListDirectoryAsync("/workspace");
            Assert.DoesNotContain(parentFiles.Entries, e => e.Name == "mine.txt");
        }
        finally
        {
            foreach (var child in children)
            {
                await child.DisposeAsync();
            }
        }
    }
}
