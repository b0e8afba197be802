using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// The stock of blank disks formatted ahead (<see cref="Storage.BlankDisks"/>). A disk is known by its ext4
/// filesystem's UUID, which each mkfs draws afresh: a sandbox whose disk has the UUID of a blank in the stock took that
/// blank by rename; one with a new UUID was formatted on its boot path.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class BlankDisksTests
{
    private const int Target = 2;

    [Fact]
    public async Task Creates_and_forks_take_blank_disks_the_stock_refills_and_a_restart_keeps_only_whole_ones_up_to_the_target()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-blanks-" + Guid.NewGuid().ToString("N")[..8]);
        var engine = await StartAsync(data, Target);
        try
        {
            var stock = engine.Sandboxes.BlankDisks;
            await Eventually.TrueAsync(() => Blanks(stock.Directory).Count == Target, "the stock to fill");
            var before = Blanks(stock.Directory);
            Assert.Equal(Target, before.Values.Distinct().Count());

            using var client = EngineFixture.NewClient(engine);
            var box = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
            var disk = FilesystemId(engine.Sandboxes.PathsOf(box.CanonicalId).DiskImage);
            var taken = Assert.Single(before, b => b.Value == disk);
            Assert.False(File.Exists(taken.Key), "the blank the sandbox took is still in the stock");
            Assert.Equal("ok", (await client.Proxy(box).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "echo ok > /workspace/f && cat /workspace/f"] })).Stdout.Trim());

            // Refilled in the background with a new blank; the untaken one stays as it was.
            await Eventually.TrueAsync(() => Blanks(stock.Directory).Count == Target, "the stock to refill");
            var refilled = Blanks(stock.Directory);
            Assert.Contains(before.Single(b => b.Value != disk).Value, refilled.Values);
            Assert.DoesNotContain(disk, refilled.Values);

            // A memory fork's child takes one too, and gets its parent's files through its layers, not its disk.
            var snapshot = await client.SnapshotAsync(box.CanonicalId, SnapshotType.Memory);
            var child = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
            Assert.Contains(FilesystemId(engine.Sandboxes.PathsOf(child.CanonicalId).DiskImage), refilled.Values);
            Assert.Equal("ok", (await client.Proxy(child).RunAsync(new RunProcessRequest { Command = "cat", Args = ["/workspace/f"] })).Stdout.Trim());
            await client.DeleteAsync(child.CanonicalId);
            await client.DeleteSnapshotAsync(snapshot.SnapshotId);
            await Eventually.TrueAsync(() => Blanks(stock.Directory).Count == Target, "the stock to refill after the fork");
            refilled = Blanks(stock.Directory);

            // A disk of another size is formatted for its sandbox; the stock is untouched.
            var small = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Resources = new SandboxResources { DiskMb = 128 } });
            Assert.DoesNotContain(FilesystemId(engine.Sandboxes.PathsOf(small.CanonicalId).DiskImage), refilled.Values);
            Assert.Equal(refilled, Blanks(stock.Directory));

            await client.DeleteAsync(box.CanonicalId);
            await client.DeleteAsync(small.CanonicalId);

            // What a refill killed mid-mkfs leaves, and a blank of another size (a default changed by an upgrade), written
            // while the volume is mounted: both removed at the next start, the whole blanks kept and ready at once.
            var partial = Path.Combine(stock.Directory, "cut.partial");
            await File.WriteAllBytesAsync(partial, new byte[4096]);
            var otherSize = Path.Combine(stock.Directory, "0000-other-size");
            await File.WriteAllBytesAsync(otherSize, new byte[4096]);
            await engine.DisposeAsync();
            engine = await StartAsync(data, Target);
            Assert.False(File.Exists(partial), "a partial blank survived the start");
            Assert.False(File.Exists(otherSize), "a blank of another size survived the start");
            Assert.Equal(refilled, Blanks(stock.Directory));
            Assert.Equal(Target, engine.Sandboxes.BlankDisks.Count);
            await engine.DisposeAsync();

            // A lower target keeps no more than it; 0 gives all their room back, and creates format their own.
            engine = await StartAsync(data, 1);
            Assert.Single(Directory.GetFiles(stock.Directory));
            await engine.DisposeAsync();
            engine = await StartAsync(data, 0);
            Assert.Empty(Directory.GetFiles(stock.Directory));
            using (var again = EngineFixture.NewClient(engine))
            {
                var formatted = await again.CreateAsync(new CreateSandboxRequest { Image = "host" });
                Assert.DoesNotContain(FilesystemId(engine.Sandboxes.PathsOf(formatted.CanonicalId).DiskImage), refilled.Values);
                await again.DeleteAsync(formatted.CanonicalId);
            }

            Assert.Empty(Directory.GetFiles(stock.Directory));
            await engine.DisposeAsync();
            Leftovers.AssertNone(data);
        }
        finally
        {
            await engine.DisposeAsync();
            Leftovers.Remove(data);
        }
    }

    private static Task<EngineServer> StartAsync(string data, int target) => EngineFixture.StartEngineAsync(data, o =>
    {
        o.VolumeMb = 512;
        o.BlankDisks = target;
    });

    /// <summary>The whole blanks in the stock, by path, with their filesystem ids.</summary>
    private static SortedDictionary<string, string> Blanks(string directory) =>
        new(Directory.GetFiles(directory).Where(f => !f.EndsWith(".partial", StringComparison.Ordinal)).ToDictionary(f => f, FilesystemId), StringComparer.Ordinal);

    /// <summary>The ext4 UUID in the image's superblock (1024 bytes in, at offset 0x68).</summary>
    private static string FilesystemId(string image)
    {
        using var file = File.OpenRead(image);
        var uuid = new byte[16];
        file.Position = 1024 + 0x68;
        file.ReadExactly(uuid);
        return Convert.ToHexString(uuid);
    }
}
