using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// disk_mb is a hard limit a sandbox hits as ENOSPC, and the data volume is a wall: sandboxes that fill it get 507 and
/// I/O errors, while the engine's own state (outside the volume) stays writable and nothing it recorded is lost.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class DiskLimitsTests(EngineFixture engine)
{
    [Fact]
    public async Task A_sandbox_cannot_write_past_its_disk_and_a_create_gets_the_default_disk()
    {
        await using var small = await engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { DiskMb = 64 } });
        var full = await small.RunAsync("head -c 100M /dev/zero > /workspace/big.bin; echo status=$?");
        Assert.Contains("status=1", full.Stdout, StringComparison.Ordinal);
        Assert.Contains("No space left on device", full.Stderr, StringComparison.Ordinal);
        Assert.Equal(64, (await engine.Client.GetAsync(small.Id)).Resources?.Disk);
        // The sandbox goes on once it frees room; the host never saw the write.
        Assert.Equal("ok", (await small.RunAsync("rm /workspace/big.bin && echo ok")).Stdout);

        await using var plain = await engine.CreateAsync();
        Assert.Equal(10240, (await engine.Client.GetAsync(plain.Id)).Resources?.Disk);
        var size = await plain.RunAsync("df -m --output=size / | tail -1");
        Assert.InRange(int.Parse(size.Stdout.Trim(), System.Globalization.CultureInfo.InvariantCulture), 9000, 10240);
    }

    [Fact]
    public async Task Out_of_range_disk_and_memory_are_refused()
    {
        var tooSmall = await Assert.ThrowsAsync<TensorlakeException>(() => engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { DiskMb = 1 } }));
        Assert.Equal(400, tooSmall.Status);
        var tooBig = await Assert.ThrowsAsync<TensorlakeException>(() => engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { DiskMb = 200_000 } }));
        Assert.Equal(400, tooBig.Status);
        var moreThanTheHost = await Assert.ThrowsAsync<TensorlakeException>(() => engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { MemoryMb = int.MaxValue } }));
        Assert.Equal(400, moreThanTheHost.Status);
        Assert.Contains("more than this host has", moreThanTheHost.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Sandboxes_that_fill_the_data_volume_get_507_and_the_engine_loses_nothing()
    {
        await using var own = await OwnEngine.StartAsync("hands-engine-volume", o => o.VolumeMb = 256);
        var (server, client, data) = (own.Server, own.Client, own.DataDirectory);
        var hostFreeBefore = new DriveInfo(data).AvailableFreeSpace;
        var filler = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Resources = new SandboxResources { DiskMb = 1024 } });
        var bystander = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "bystander" });

        // More than the whole volume: the filler's own disk (1 GiB, sparse) would take it, the volume cannot.
        await client.Proxy(filler).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "head -c 400M /dev/urandom > /workspace/big.bin; sync"] });

        Assert.True(server.VolumeFreeBytes < 16L << 20, $"the volume still has {server.VolumeFreeBytes >> 20} MiB free");
        var create = await Assert.ThrowsAsync<TensorlakeException>(() => client.CreateAsync(new CreateSandboxRequest { Image = "host" }));
        Assert.Equal(507, create.Status);
        var snapshot = await Assert.ThrowsAsync<TensorlakeException>(() => client.SnapshotAsync(bystander.CanonicalId));
        Assert.Equal(507, snapshot.Status);

        // The engine's own state is outside the volume: it still records changes, and the host's disk lost nothing to the fill.
        var renamed = await client.UpdateAsync(bystander.CanonicalId, new UpdateSandboxRequest { Name = "still-writable" });
        Assert.Equal("still-writable", renamed.Name);
        Assert.Equal("ok", (await client.Proxy(bystander).RunAsync(new RunProcessRequest { Command = "echo", Args = ["ok"] })).Stdout);
        Assert.True(new DriveInfo(data).AvailableFreeSpace > hostFreeBefore - (64L << 20), "the fill reached the host's disk");

        // Deleting the filler gives its room back.
        await client.DeleteAsync(filler.CanonicalId);
        var after = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
        Assert.Equal(SandboxStatus.Running, (await client.GetAsync(after.CanonicalId)).Status);
        await client.DeleteAsync(after.CanonicalId);
        await client.DeleteAsync(bystander.CanonicalId);
    }
}
