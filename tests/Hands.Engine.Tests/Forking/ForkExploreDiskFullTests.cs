using System.Diagnostics;
using Hands.Forking;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Forking;

/// <summary>
/// A checkpoint that does not fit: a second engine whose data directory is a small tmpfs, a parent whose files fill
/// most of it. The exploration fails with a clean error, leaves no snapshot and no child, and the parent runs on.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class ForkExploreDiskFullTests
{
    [Fact]
    public async Task A_checkpoint_that_fills_the_disk_is_a_clean_error_with_nothing_left_behind()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-diskfull-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);
        await Run("mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", data);
        try
        {
            var engine = await EngineFixture.StartEngineAsync(data);
            using var client = EngineFixture.NewClient(engine);
            try
            {
                var parent = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "full-disk-parent" });
                var proxy = client.Proxy(parent);
                var freeMb = new DriveInfo(data).AvailableFreeSpace / (1024 * 1024);
                var fill = await proxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", $"head -c {freeMb * 6 / 10}M /dev/zero > /workspace/big.bin && echo filled"] });
                Assert.True(fill.Stdout.Contains("filled", StringComparison.Ordinal), fill.Stdout + fill.Stderr);

                var failure = await Assert.ThrowsAsync<ForkExploreException>(() => new ForkExplorer(client).ExploreAsync(parent.CanonicalId, [new("a", "true")]));
                Assert.Equal(507, failure.Status);
                Assert.Contains("did not fit", failure.Message, StringComparison.Ordinal);
                Assert.Empty(await client.ListSnapshotsAsync());
                var layers = Path.Combine(data, "layers");
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
            finally
            {
                await foreach (var sandbox in client.ListAllAsync(SandboxStatus.Running))
                {
                    await client.DeleteAsync(sandbox.CanonicalId);
                }

                await engine.DisposeAsync();
                Leftovers.AssertNone(data);
            }
        }
        finally
        {
            await Run("umount", data);
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
