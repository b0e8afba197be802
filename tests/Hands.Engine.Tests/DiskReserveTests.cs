using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// The reserve of blank disks formatted ahead (<see cref="Storage.DiskReserve"/>). A disk is known by its ext4
/// filesystem's UUID, which each mkfs draws afresh: a sandbox whose disk has the UUID of a reserved blank took that
/// blank by rename, one with a new UUID was formatted on its boot path.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class DiskReserveTests
{
    private const int Target = 2;

    [Fact]
    public async Task A_create_takes_a_blank_disk_the_reserve_refills_it_and_a_restart_keeps_the_whole_ones_only()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-reserve-" + Guid.NewGuid().ToString("N")[..8]);
        var engine = await StartAsync(data, Target);
        try
        {
            var reserve = engine.Sandboxes.DiskReserve;
            await Eventually.TrueAsync(() => Blanks(reserve.Directory).Count == Target, "the reserve to fill");
            var before = Blanks(reserve.Directory);
            Assert.Equal(Target, before.Values.Distinct().Count());

            using var client = EngineFixture.NewClient(engine);
            var box = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
            var disk = FilesystemId(engine.Sandboxes.PathsOf(box.CanonicalId).DiskImage);
            var taken = Assert.Single(before, b => b.Value == disk);
            Assert.False(File.Exists(taken.Key), "the blank the sandbox took is still in the reserve");
            Assert.Equal("ok", (await client.Proxy(box).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "echo ok > /workspace/f && cat /workspace/f"] })).Stdout.Trim());

            // Refilled in the background with a new blank; the untaken one stays as it was.
            await Eventually.TrueAsync(() => Blanks(reserve.Directory).Count == Target, "the reserve to refill");
            var refilled = Blanks(reserve.Directory);
            Assert.Contains(before.Single(b => b.Value != disk).Value, refilled.Values);
            Assert.DoesNotContain(disk, refilled.Values);

            // A disk of another size is formatted for its sandbox; the reserve is untouched.
            var small = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Resources = new SandboxResources { DiskMb = 128 } });
            Assert.DoesNotContain(FilesystemId(engine.Sandboxes.PathsOf(small.CanonicalId).DiskImage), refilled.Values);
            Assert.Equal(refilled, Blanks(reserve.Directory));

            await client.DeleteAsync(box.CanonicalId);
            await client.DeleteAsync(small.CanonicalId);

            // What a refill killed mid-mkfs leaves (written while the volume is mounted): removed at the next start.
            // The whole blanks are kept and ready at once.
            var partial = Path.Combine(reserve.Directory, "cut.partial");
            await File.WriteAllBytesAsync(partial, new byte[4096]);
            await engine.DisposeAsync();
            engine = await StartAsync(data, Target);
            Assert.False(File.Exists(partial), "a partial blank survived the start");
            Assert.Equal(refilled, Blanks(reserve.Directory));
            Assert.Equal(Target, engine.Sandboxes.DiskReserve.Count);
            await engine.DisposeAsync();

            // Turned off, the reserve gives its room back.
            engine = await StartAsync(data, 0);
            Assert.Empty(Directory.GetFiles(reserve.Directory));
            using (var again = EngineFixture.NewClient(engine))
            {
                var formatted = await again.CreateAsync(new CreateSandboxRequest { Image = "host" });
                Assert.DoesNotContain(FilesystemId(engine.Sandboxes.PathsOf(formatted.CanonicalId).DiskImage), refilled.Values);
                await again.DeleteAsync(formatted.CanonicalId);
            }

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
        o.DiskReserve = target;
    });

    /// <summary>The whole blanks in the reserve, by path, with their filesystem ids.</summary>
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
