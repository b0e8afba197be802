using Hands.Forking;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Forking;

/// <summary>
/// A checkpoint that does not fit: a second engine with a small data volume, a parent whose files fill most of it. The exploration fails with a clean error, leaves no snapshot and no child, and the parent runs on.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class ForkExploreDiskFullTests
{
    [Fact]
    public async Task A_checkpoint_that_fills_the_disk_is_a_clean_error_with_nothing_left_behind()
    {
        await using var own = await OwnEngine.StartAsync("hands-engine-diskfull", o => o.VolumeMb = 256);
        var (engine, client, data) = (own.Server, own.Client, own.DataDirectory);
        var parent = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "full-disk-parent" });
        var proxy = client.Proxy(parent);
        var freeMb = engine.VolumeFreeBytes / (1024 * 1024);
        // sync: the parent's disk is a sparse image in the volume, so its blocks are taken when they are written back.
        var fill = await proxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", $"head -c {freeMb * 6 / 10}M /dev/urandom > /workspace/big.bin && sync && echo filled"] });
        Assert.True(fill.Stdout.Contains("filled", StringComparison.Ordinal), fill.Stdout + fill.Stderr);

        var failure = await Assert.ThrowsAsync<ForkExploreException>(() => new ForkExplorer(client).ExploreAsync(parent.CanonicalId, [new("a", "true")]));
        Assert.Equal(507, failure.Status);
        Assert.Contains("did not fit", failure.Message, StringComparison.Ordinal);
        Assert.Empty(await client.ListSnapshotsAsync());
        var layers = Path.Combine(Storage.DataVolume.MountPointOf(data), "layers");
        Assert.Empty(Directory.Exists(layers) ? Directory.GetFileSystemEntries(layers) : []);
        var live = new List<string>();
        await foreach (var sandbox in client.ListAllAsync(SandboxStatus.Running))
        {
            live.Add(sandbox.CanonicalId);
        }

        Assert.Equal([parent.CanonicalId], live);
        Assert.Equal("ok", (await proxy.RunAsync(new RunProcessRequest { Command = "echo", Args = ["ok"] })).Stdout);
        await client.DeleteAsync(parent.CanonicalId);
    }
}
