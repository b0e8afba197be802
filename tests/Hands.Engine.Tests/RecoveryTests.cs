using System.Diagnostics;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>An engine restart re-attaches to running sandboxes, keeps suspended ones and snapshots, and clears orphans.</summary>
[Collection(EngineCollection.Name)]
public sealed class RecoveryTests
{
    [Fact]
    public async Task A_restarted_engine_reattaches_keeps_suspended_sandboxes_and_snapshots_and_removes_orphans()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-restart-" + Guid.NewGuid().ToString("N")[..8]);
        var first = await EngineFixture.StartEngineAsync(data);
        string running, frozen, hibernated, snapshotId;
        using (var client = EngineFixture.NewClient(first))
        {
            running = (await client.CreateAsync(new CreateSandboxRequest { Image = "host" })).CanonicalId;
            await client.Proxy(await client.GetAsync(running)).WriteFileAsync("/workspace/kept.txt", "still here"u8.ToArray());
            frozen = (await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "frozen-one" })).CanonicalId;
            await client.SuspendAsync(frozen);
            hibernated = (await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "hibernated-one" })).CanonicalId;
            await client.SuspendAsync(hibernated, hibernate: true);
            snapshotId = (await client.SnapshotAsync(running)).SnapshotId;
        }

        await first.DisposeAsync();
        // What a crash mid-create leaves: a mounted root, a network namespace and a half-copied layer of nobody's.
        var orphan = Path.Combine(Storage.DataVolume.MountPointOf(data), "sandboxes", "sorphan", "rootfs");
        Directory.CreateDirectory(orphan);
        await Run("mount", "-t", "tmpfs", "tmpfs", orphan);
        var orphanNs = Path.Combine(data, "netns", "sorphan");
        await File.WriteAllTextAsync(orphanNs, "");
        await Run("unshare", $"--net={orphanNs}", "true");
        Directory.CreateDirectory(Path.Combine(Storage.DataVolume.MountPointOf(data), "layers", "nhalf.partial"));

        var second = await EngineFixture.StartEngineAsync(data);
        try
        {
            using var client = EngineFixture.NewClient(second);
            var info = await client.GetAsync(running);
            Assert.Equal(SandboxStatus.Running, info.Status);
            var proxy = client.Proxy(info);
            Assert.Equal("still here", (await proxy.RunAsync(new RunProcessRequest { Command = "cat", Args = ["/workspace/kept.txt"] })).Stdout);
            Assert.Equal(("suspended", "frozen"), ((await client.GetAsync(frozen)).Status, (await client.GetAsync(frozen)).SuspendTier));
            Assert.Equal(("suspended", "hibernated"), ((await client.GetAsync(hibernated)).Status, (await client.GetAsync(hibernated)).SuspendTier));
            Assert.True(await client.ResumeAsync(hibernated));
            Assert.True(await client.ResumeAsync(frozen));
            var fork = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshotId });
            Assert.Equal("still here", System.Text.Encoding.UTF8.GetString(await client.Proxy(fork).ReadFileAsync("/workspace/kept.txt")));

            Assert.DoesNotContain(File.ReadLines("/proc/self/mountinfo"), l => l.Contains("sorphan", StringComparison.Ordinal));
            Assert.False(File.Exists(orphanNs));
            Assert.False(Directory.Exists(Path.Combine(Storage.DataVolume.MountPointOf(data), "layers", "nhalf.partial")));

            foreach (var id in new[] { running, frozen, hibernated, fork.CanonicalId })
            {
                await client.DeleteAsync(id);
            }

            await client.DeleteSnapshotAsync(snapshotId);
        }
        finally
        {
            await second.DisposeAsync();
            Leftovers.AssertNone(data);
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true })!;
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"{file} failed: {await process.StandardError.ReadToEndAsync()}");
    }
}
