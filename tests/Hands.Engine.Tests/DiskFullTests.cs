using System.Globalization;
using System.Text;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Xunit.Abstractions;

namespace Hands.Engine.Tests;

/// <summary>
/// The data volume fills up while a snapshot or a hibernation is writing into it, so the write fails with ENOSPC part
/// of the way through. The fault is the realistic one on thin disks: another sandbox writes into its own (sparse) disk,
/// which grows inside the same volume, until the volume is full. Each operation must fail with 507 and a message that
/// says the volume is full, leave the sandbox running with its processes and files, leave nothing partial (no layer,
/// checkpoint or hibernation image, no snapshot record), leave a restarted engine nothing to clean, and succeed once
/// the filler is deleted.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class DiskFullTests(ITestOutputHelper output)
{
    private const int VolumeMb = 1024;
    private static readonly TimeSpan HibernateAfter = TimeSpan.FromMinutes(10);

    /// <summary>
    /// The memory image is only known when CRIU writes it: the engine's check before a snapshot counts the files the
    /// sandbox wrote (a few KiB here), not the 192 MiB a process holds, so the dump itself meets the full volume. The
    /// same for a hibernation asked for and one the idle clock starts (a fake clock the test moves, and idle passes the
    /// test runs): the latter stays frozen and is not tried again on every pass.
    /// </summary>
    [Fact]
    public async Task A_memory_snapshot_and_a_hibernation_that_meet_a_full_volume_fail_with_507_and_leave_nothing()
    {
        var data = NewDataDirectory();
        var logs = new CapturedLogs();
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var engine = await StartAsync(data, logs, clock);
        try
        {
            var client = EngineFixture.NewClient(engine);
            var box = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "memory-holder", TimeoutSecs = 0 });
            await client.Proxy(box).WriteFileAsync("/workspace/kept.txt", "kept"u8.ToArray());
            var holder = await HoldMemoryAsync(client.Proxy(box), megabytes: 192);

            // Another tenant fills the volume until 120 MiB are left: more than the check before a snapshot asks for
            // (the files written plus the volume's low-water mark, 51 MiB here), less than the memory image.
            var filler = await FillAsync(client, engine, leaveFree: 120L << 20);
            var before = VolumeEntries(data);

            var took = System.Diagnostics.Stopwatch.StartNew();
            var snapshot = await Assert.ThrowsAsync<TensorlakeException>(() => client.SnapshotAsync(box.CanonicalId, SnapshotType.Memory));
            output.WriteLine($"memory snapshot, answered in {took.ElapsedMilliseconds} ms: {snapshot.Status} {snapshot.ErrorMessage}");
            AssertVolumeFull(snapshot);
            Assert.Empty(await client.ListSnapshotsAsync());
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.Equal(before, VolumeEntries(data));

            took.Restart();
            var hibernate = await Assert.ThrowsAsync<TensorlakeException>(() => client.SuspendAsync(box.CanonicalId, hibernate: true));
            output.WriteLine($"hibernation, answered in {took.ElapsedMilliseconds} ms: {hibernate.Status} {hibernate.ErrorMessage}");
            AssertVolumeFull(hibernate);
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.Equal(before, VolumeEntries(data));

            // Frozen past --hibernate-after, the idle clock hibernates it: the dump fails, it stays frozen, and the next
            // passes do not dump again until another --hibernate-after has gone by.
            Assert.True(await client.SuspendAsync(box.CanonicalId));
            clock.Advance(HibernateAfter + TimeSpan.FromSeconds(1));
            await engine.Sandboxes.IdleTickAsync(CancellationToken.None);
            Assert.Contains("data volume is full", Assert.Single(logs.Warnings), StringComparison.Ordinal);
            Assert.Equal("frozen", (await client.GetAsync(box.CanonicalId)).SuspendTier);
            Assert.Equal(before, VolumeEntries(data));
            clock.Advance(TimeSpan.FromSeconds(30));
            await engine.Sandboxes.IdleTickAsync(CancellationToken.None);
            Assert.Single(logs.Warnings);
            clock.Advance(HibernateAfter);
            await engine.Sandboxes.IdleTickAsync(CancellationToken.None);
            Assert.Equal(2, logs.Warnings.Count);
            Assert.Equal(before, VolumeEntries(data));

            // A restarted engine finds nothing to clean: no warning, the same files, the sandbox kept as it was.
            client.Dispose();
            await engine.DisposeAsync();
            logs.Clear();
            took.Restart();
            engine = await StartAsync(data, logs, clock);
            output.WriteLine($"restarted in {took.ElapsedMilliseconds} ms");
            client = EngineFixture.NewClient(engine);
            Assert.Empty(logs.Warnings);
            Assert.Equal(before, VolumeEntries(data));
            Assert.Equal("frozen", (await client.GetAsync(box.CanonicalId)).SuspendTier);
            Assert.True(await client.ResumeAsync(box.CanonicalId));
            await AssertIntactAsync(client, box.CanonicalId, holder);

            // Room again: the same operations succeed, and the process comes back from each hibernation with its memory.
            await client.DeleteAsync(filler);
            var taken = await client.SnapshotAsync(box.CanonicalId, SnapshotType.Memory);
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.True(await client.SuspendAsync(box.CanonicalId, hibernate: true));
            Assert.Equal("hibernated", (await client.GetAsync(box.CanonicalId)).SuspendTier);
            Assert.True(await client.ResumeAsync(box.CanonicalId));
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.True(await client.SuspendAsync(box.CanonicalId));
            clock.Advance(HibernateAfter + TimeSpan.FromSeconds(1));
            await engine.Sandboxes.IdleTickAsync(CancellationToken.None);
            Assert.Equal("hibernated", (await client.GetAsync(box.CanonicalId)).SuspendTier);
            Assert.True(await client.ResumeAsync(box.CanonicalId));
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.Empty(logs.Warnings);

            await client.DeleteAsync(box.CanonicalId);
            await client.DeleteSnapshotAsync(taken.SnapshotId);
            client.Dispose();
            await engine.DisposeAsync();
            Leftovers.AssertNone(data);
        }
        finally
        {
            await engine.DisposeAsync();
            Leftovers.Remove(data);
        }
    }

    /// <summary>
    /// A filesystem snapshot is refused up front when the sandbox's files cannot fit; here they fit when the copy
    /// starts and the volume fills while it runs. The copy is held (SIGSTOP) the moment it starts only to make that
    /// timing certain; the fill is a real write by another sandbox.
    /// </summary>
    [Fact]
    public async Task A_filesystem_snapshot_whose_copy_meets_a_full_volume_fails_with_507_and_leaves_nothing()
    {
        var data = NewDataDirectory();
        var engine = await StartAsync(data, new CapturedLogs(), TimeProvider.System);
        try
        {
            using var client = EngineFixture.NewClient(engine);
            var box = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "writer" });
            var wrote = await client.Proxy(box).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "head -c 256M /dev/urandom > /workspace/big.bin && sha256sum /workspace/big.bin && sync"] });
            var checksum = wrote.Stdout.Split(' ')[0];
            Assert.Equal(64, checksum.Length);
            var holder = await HoldMemoryAsync(client.Proxy(box), megabytes: 1);
            var filler = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Resources = new SandboxResources { DiskMb = 4096 } });
            var before = VolumeEntries(data);

            var layers = Path.Combine(Storage.DataVolume.MountPointOf(data), "layers");
            var snapshotting = client.SnapshotAsync(box.CanonicalId, SnapshotType.Filesystem);
            var copy = 0;
            await Eventually.TrueAsync(() => (copy = CopyInto(layers)) > 0 || snapshotting.IsCompleted, "the snapshot's copy to start");
            Assert.True(copy > 0, "the snapshot finished before its copy was seen");
            Signal("STOP", copy);
            try
            {
                var partial = Directory.EnumerateDirectories(layers, "*.partial").Single();
                Assert.True(SizeOf(partial) < 256L << 20, "the copy was complete before it could be held");
                // The other sandbox writes until the volume is full: its own disk has room, the volume under it does not.
                await client.Proxy(filler).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "head -c 3G /dev/zero > /workspace/fill; sync"] });
                Assert.True(new DriveInfo(Storage.DataVolume.MountPointOf(data)).TotalFreeSpace < 256L << 20, "the filler did not fill the volume");
            }
            finally
            {
                Signal("CONT", copy);
            }

            var snapshot = await Assert.ThrowsAsync<TensorlakeException>(() => snapshotting);
            output.WriteLine($"filesystem snapshot: {snapshot.Status} {snapshot.ErrorMessage}");
            AssertVolumeFull(snapshot);
            Assert.Empty(await client.ListSnapshotsAsync());
            await AssertIntactAsync(client, box.CanonicalId, holder);
            Assert.Equal(checksum, (await client.Proxy(box).RunAsync(new RunProcessRequest { Command = "sha256sum", Args = ["/workspace/big.bin"] })).Stdout.Split(' ')[0]);
            Assert.Equal(before, VolumeEntries(data));

            await client.DeleteAsync(filler.CanonicalId);
            var taken = await client.SnapshotAsync(box.CanonicalId, SnapshotType.Filesystem);
            await AssertIntactAsync(client, box.CanonicalId, holder);
            var fork = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = taken.SnapshotId });
            Assert.Equal(checksum, (await client.Proxy(fork).RunAsync(new RunProcessRequest { Command = "sha256sum", Args = ["/workspace/big.bin"] })).Stdout.Split(' ')[0]);

            await client.DeleteAsync(fork.CanonicalId);
            await client.DeleteAsync(box.CanonicalId);
            await client.DeleteSnapshotAsync(taken.SnapshotId);
            await engine.DisposeAsync();
            Leftovers.AssertNone(data);
        }
        finally
        {
            await engine.DisposeAsync();
            Leftovers.Remove(data);
        }
    }

    private static string NewDataDirectory() => Path.Combine(Path.GetTempPath(), "hands-engine-diskfull-" + Guid.NewGuid().ToString("N")[..8]);

    private static Task<EngineServer> StartAsync(string data, CapturedLogs logs, TimeProvider clock)
    {
        var options = EngineFixture.Options(data);
        options.VolumeMb = VolumeMb;
        options.TimeProvider = clock;
        options.HibernateAfter = HibernateAfter;
        // The test runs the idle passes itself.
        options.IdleCheckInterval = TimeSpan.FromDays(1);
        return EngineServer.StartAsync(options, logging => logging.SetMinimumLevel(LogLevel.Warning).AddProvider(logs));
    }

    /// <summary>A typed answer: 507 Insufficient Storage, saying the data volume is full and that the sandbox runs on.</summary>
    private static void AssertVolumeFull(TensorlakeException ex)
    {
        Assert.Equal(507, ex.Status);
        Assert.Contains("data volume is full", ex.ErrorMessage, StringComparison.Ordinal);
        Assert.Contains("nothing was kept", ex.ErrorMessage, StringComparison.Ordinal);
    }

    /// <summary>Starts a process holding <paramref name="megabytes"/> MiB of random bytes (its memory image cannot be smaller); answers its pid.</summary>
    private static async Task<int> HoldMemoryAsync(SandboxProxyClient proxy, int megabytes)
    {
        var process = await proxy.StartProcessAsync(new StartProcessRequest
        {
            Command = "python3",
            Args = ["-c", $"import os, time\nheld = os.urandom({megabytes} << 20)\nprint('holding', flush=True)\ntime.sleep(1e6)"],
        });
        var pid = process.Pid.ToString(CultureInfo.InvariantCulture);
        await Eventually.TrueAsync(async () => (await proxy.GetOutputAsync(pid)).Lines.Contains("holding"), "the process to hold its memory", TimeSpan.FromSeconds(60));
        return process.Pid;
    }

    /// <summary>A sandbox that writes into its own disk until the volume has <paramref name="leaveFree"/> bytes left; answers its id.</summary>
    private static async Task<string> FillAsync(TensorlakeClient client, EngineServer engine, long leaveFree)
    {
        var filler = await client.CreateAsync(new CreateSandboxRequest { Image = "host", TimeoutSecs = 0, Resources = new SandboxResources { DiskMb = 4096 } });
        var bytes = engine.VolumeFreeBytes - leaveFree;
        await client.Proxy(filler).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", $"head -c {bytes} /dev/urandom > /workspace/fill && sync"] });
        Assert.InRange(engine.VolumeFreeBytes, leaveFree - (40L << 20), leaveFree + (40L << 20));
        return filler.CanonicalId;
    }

    /// <summary>The sandbox runs, its daemon answers, the process started before is the same and still running, and its file reads back.</summary>
    private static async Task AssertIntactAsync(TensorlakeClient client, string sandbox, int holder)
    {
        var info = await client.GetAsync(sandbox);
        Assert.Equal(SandboxStatus.Running, info.Status);
        var proxy = client.Proxy(info);
        Assert.Equal("running", (await proxy.GetProcessAsync(holder.ToString(CultureInfo.InvariantCulture))).Status);
        Assert.Equal("ok", (await proxy.RunAsync(new RunProcessRequest { Command = "echo", Args = ["ok"] })).Stdout);
        if (info.Name == "memory-holder")
        {
            Assert.Equal("kept", Encoding.UTF8.GetString(await proxy.ReadFileAsync("/workspace/kept.txt")));
        }
    }

    /// <summary>What the volume holds: every layer, checkpoint and entry of every sandbox's directory.</summary>
    private static List<string> VolumeEntries(string data)
    {
        var volume = Storage.DataVolume.MountPointOf(data);
        IEnumerable<string> Entries(string relative) => Directory.Exists(Path.Combine(volume, relative))
            ? Directory.EnumerateFileSystemEntries(Path.Combine(volume, relative)).Select(e => relative + "/" + Path.GetFileName(e))
            : [];
        return [.. Entries("layers").Concat(Entries("checkpoints")).Concat(Entries("sandboxes").SelectMany(Entries)).Order(StringComparer.Ordinal)];
    }

    /// <summary>The pid of a <c>cp</c> copying into a partial layer under <paramref name="layers"/>, or 0.</summary>
    private static int CopyInto(string layers)
    {
        foreach (var pid in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
        {
            try
            {
                var argv = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                if (argv[0] == "cp" && argv.Any(a => a.StartsWith(layers + "/", StringComparison.Ordinal) && a.EndsWith(".partial", StringComparison.Ordinal)))
                {
                    return int.Parse(pid!, CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // It ended while it was being read.
            }
        }

        return 0;
    }

    private static long SizeOf(string directory) =>
        new DirectoryInfo(directory).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Sum(f => f.Length);

    private static void Signal(string signal, int pid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    /// <summary>The warnings and errors an engine logged.</summary>
    private sealed class CapturedLogs : ILoggerProvider
    {
        private readonly List<string> _warnings = [];

        public IReadOnlyList<string> Warnings
        {
            get
            {
                lock (_warnings)
                {
                    return [.. _warnings];
                }
            }
        }

        public void Clear()
        {
            lock (_warnings)
            {
                _warnings.Clear();
            }
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs owner, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel))
                {
                    lock (owner._warnings)
                    {
                        owner._warnings.Add($"{logLevel} {category}: {formatter(state, exception)}");
                    }
                }
            }
        }
    }
}
