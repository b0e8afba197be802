using System.Text;
using Hands.Engine.Hosting;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// The engine killed with SIGKILL inside each of its crash windows (<see cref="CrashPoints"/>), as a separate process,
/// then started again on the same data: every record is settled (finished or cleanly undone), what was kept works, and
/// nothing is left on the host or in the data volume — no container, mount, loop device, veth, cgroup or layer.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class CrashRecoveryTests
{
    [Fact]
    public void Every_crash_point_is_tested() =>
        Assert.Equal(CrashPoints.All.Order(), Points.Cast<object[]>().Select(row => (string)row[0]).Order());

    public static TheoryData<string> Points => new(CrashPoints.All);

    [Theory]
    [MemberData(nameof(Points))]
    public async Task An_engine_killed_in_a_crash_window_settles_it_on_restart(string point)
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-crash-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            string? sandbox = null;
            await using (var doomed = await EngineProcess.StartAsync(data, point))
            {
                using var client = Client(doomed.ApiAddress);
                sandbox = await DriveIntoAsync(point, client, data);
                Assert.True(await doomed.WaitForDeathAsync() == 137, $"the engine did not die by SIGKILL at {point}:\n{doomed.Output}");
            }

            // Restarted with no spare networks of its own, so none can stand in for one the killed engine left.
            var engine = await EngineFixture.StartEngineAsync(data, o => o.SpareNetworks = 0);
            try
            {
                using var client = EngineFixture.NewClient(engine);
                await AssertSettledAsync(point, client, sandbox, engine);
                AssertNothingUnrecorded(data, await client.ListAllAsync().ToListAsync(), await client.ListSnapshotsAsync());
                Assert.Empty(Directory.GetFiles(Path.Combine(data, "netns"), Network.SpareNetworks.FilePrefix + "*"));
                var orphans = Faults.HostLeaks.FindOrphans(data, await client.ListAllAsync().ToListAsync(), await client.ListSnapshotsAsync());
                Assert.True(orphans.Count == 0, string.Join("; ", orphans));
                foreach (var snapshot in await client.ListSnapshotsAsync())
                {
                    await client.DeleteSnapshotAsync(snapshot.CanonicalId);
                }

                await foreach (var live in client.ListAllAsync())
                {
                    if (live.Status != SandboxStatus.Terminated)
                    {
                        await client.DeleteAsync(live.CanonicalId);
                    }
                }

                AssertNothingUnrecorded(data, [], []);
            }
            finally
            {
                await engine.DisposeAsync();
            }

            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
        }
    }

    /// <summary>Runs the operation whose crash window <paramref name="point"/> is; answers the sandbox it concerns, when known.</summary>
    private static async Task<string?> DriveIntoAsync(string point, TensorlakeClient client, string data)
    {
        switch (point)
        {
            case CrashPoints.CreateBooted:
                await Assert.ThrowsAnyAsync<Exception>(() => client.CreateAsync(new CreateSandboxRequest { Image = "host" }));
                return null;
            case CrashPoints.DeleteTornDown:
            {
                var id = (await client.CreateAsync(new CreateSandboxRequest { Image = "host" })).CanonicalId;
                await Assert.ThrowsAnyAsync<Exception>(() => client.DeleteAsync(id));
                return id;
            }

            case CrashPoints.HibernateDumped:
            {
                var id = await WithFileAsync(client, "crash-hibernate");
                await Assert.ThrowsAnyAsync<Exception>(() => client.SuspendAsync(id, hibernate: true));
                return id;
            }

            case CrashPoints.WakeRestored or CrashPoints.WakeResumed:
            {
                var id = await WithFileAsync(client, "crash-wake");
                await client.SuspendAsync(id, hibernate: true);
                await Assert.ThrowsAnyAsync<Exception>(() => client.ResumeAsync(id));
                return id;
            }

            case CrashPoints.SnapshotLayerMoved:
            {
                var id = await WithFileAsync(client, null);
                await Assert.ThrowsAnyAsync<Exception>(() => client.SnapshotAsync(id, SnapshotType.Filesystem));
                return id;
            }

            case CrashPoints.ForkRestored:
            {
                var id = await WithFileAsync(client, null);
                var snapshot = await client.SnapshotAsync(id, SnapshotType.Memory);
                await Assert.ThrowsAnyAsync<Exception>(() => client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId }));
                return id;
            }

            case CrashPoints.ForkSpareTaken:
            {
                var id = await WithFileAsync(client, null);
                var snapshot = await client.SnapshotAsync(id, SnapshotType.Memory);
                // The fork takes a spare only when one is ready: the first is whole once a second is under way.
                await Hands.Testing.Eventually.TrueAsync(() => Directory.GetFiles(Path.Combine(data, "netns"), Network.SpareNetworks.FilePrefix + "*").Length >= 2,
                    "the engine's spare networks", TimeSpan.FromSeconds(60));
                await Assert.ThrowsAnyAsync<Exception>(() => client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId }));
                return id;
            }

            case CrashPoints.ResizeApplied:
            {
                var id = await WithFileAsync(client, null);
                await Assert.ThrowsAnyAsync<Exception>(() => client.ResizeAsync(id, memoryMb: 768));
                return id;
            }

            default:
                throw new ArgumentOutOfRangeException(nameof(point), point, "no scenario drives into this crash point");
        }
    }

    private static async Task AssertSettledAsync(string point, TensorlakeClient client, string? sandbox, EngineServer engine)
    {
        var all = await client.ListAllAsync().ToListAsync();
        switch (point)
        {
            case CrashPoints.CreateBooted:
                // Booted but never answered: undone.
                Assert.Equal("EngineRestarted", Assert.Single(all).TerminationReason);
                break;
            case CrashPoints.DeleteTornDown:
                // Torn down but not recorded: finished.
                var deleted = await client.GetAsync(sandbox!);
                Assert.Equal((SandboxStatus.Terminated, "EngineRestarted"), (deleted.Status, deleted.TerminationReason));
                break;
            case CrashPoints.HibernateDumped:
                // Dumped but not recorded: finished; it wakes with its files and processes.
                var hibernated = await client.GetAsync(sandbox!);
                Assert.Equal((SandboxStatus.Suspended, "hibernated"), (hibernated.Status, hibernated.SuspendTier));
                Assert.True(await client.ResumeAsync(sandbox!));
                await AssertFileAsync(client, sandbox!);
                break;
            case CrashPoints.WakeRestored:
                // Restored with its veth's host end still down: finished; the link is up again (the ingress reaches
                // the daemon through it), the dump is gone, and it runs with its files.
                Assert.Equal(SandboxStatus.Running, (await client.GetAsync(sandbox!)).Status);
                var hostEnd = engine.Sandboxes.SlotOf(engine.Sandboxes.FindAlive(sandbox!)!).HostInterface;
                Assert.Equal("up", File.ReadAllText($"/sys/class/net/{hostEnd}/operstate").Trim());
                await AssertFileAsync(client, sandbox!);
                Assert.True(await client.SuspendAsync(sandbox!, hibernate: true));
                Assert.True(await client.ResumeAsync(sandbox!));
                await AssertFileAsync(client, sandbox!);
                break;
            case CrashPoints.WakeResumed:
                // Restored but not recorded: finished; it runs, with its files, and wakes no second time.
                Assert.Equal(SandboxStatus.Running, (await client.GetAsync(sandbox!)).Status);
                await AssertFileAsync(client, sandbox!);
                Assert.True(await client.SuspendAsync(sandbox!));
                Assert.True(await client.ResumeAsync(sandbox!));
                break;
            case CrashPoints.SnapshotLayerMoved:
                // Copied but not recorded: undone; the sandbox runs on.
                Assert.Empty(await client.ListSnapshotsAsync());
                Assert.Equal(SandboxStatus.Running, (await client.GetAsync(sandbox!)).Status);
                await AssertFileAsync(client, sandbox!);
                break;
            case CrashPoints.ForkSpareTaken:
            case CrashPoints.ForkRestored:
                // Restored with its parent's processes still alive, never connected (or not even restored, its network
                // still the spare it took): undone, with the spare; the parent runs on.
                var fork = Assert.Single(all, s => s.CanonicalId != sandbox);
                Assert.Equal((SandboxStatus.Terminated, "EngineRestarted"), (fork.Status, fork.TerminationReason));
                await AssertFileAsync(client, sandbox!);
                break;
            case CrashPoints.ResizeApplied:
                // Applied but recorded as pending with the old limits: finished; the record and the kernel agree.
                var resized = await client.GetAsync(sandbox!);
                Assert.Equal((1, "succeeded"), (resized.ResourceResize!.Generation, resized.ResourceResize.Status));
                Assert.Equal(768, resized.Resources!.MemoryMb);
                Assert.Equal(768L << 20, MemoryLimit(sandbox!));
                await AssertFileAsync(client, sandbox!);
                break;
        }
    }

    /// <summary>The data volume holds only what the engine's records name: live sandboxes' directories, snapshots' layers and checkpoints.</summary>
    private static void AssertNothingUnrecorded(string data, List<SandboxInfo> sandboxes, IReadOnlyList<SnapshotInfo> snapshots)
    {
        var volume = Storage.DataVolume.MountPointOf(data);
        var live = sandboxes.Where(s => s.Status != SandboxStatus.Terminated).Select(s => s.CanonicalId).Order().ToList();
        Assert.Equal(live, Entries(Path.Combine(volume, "sandboxes")));
        var kept = snapshots.Select(s => s.CanonicalId).Order().ToList();
        Assert.Equal(kept, Entries(Path.Combine(volume, "layers")));
        Assert.True(Entries(Path.Combine(volume, "checkpoints")).All(kept.Contains), "a checkpoint of no snapshot was left");
    }

    private static List<string> Entries(string directory) =>
        Directory.Exists(directory) ? [.. Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order().Cast<string>()] : [];

    private static async Task<string> WithFileAsync(TensorlakeClient client, string? name)
    {
        var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = name });
        await client.Proxy(created).WriteFileAsync("/workspace/kept.txt", "kept"u8.ToArray());
        return created.CanonicalId;
    }

    private static async Task AssertFileAsync(TensorlakeClient client, string sandbox) =>
        Assert.Equal("kept", Encoding.UTF8.GetString(await client.Proxy(await client.GetAsync(sandbox)).ReadFileAsync("/workspace/kept.txt")));

    private static long MemoryLimit(string sandbox)
    {
        var memory = Sandboxes.SandboxCgroups.MemoryDirectory(sandbox)!;
        var v1 = Path.Combine(memory, "memory.limit_in_bytes");
        return long.Parse(File.ReadAllText(File.Exists(v1) ? v1 : Path.Combine(memory, "memory.max")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private static TensorlakeClient Client(Uri api) => new(new TensorlakeClientOptions { ApiUrl = api, ApiKey = EngineFixture.ApiKey, MaxRetries = 0 });
}
