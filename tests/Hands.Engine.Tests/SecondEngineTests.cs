using System.Diagnostics;
using System.Text;
using Hands.Engine.Hosting;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Xunit.Abstractions;

namespace Hands.Engine.Tests;

/// <summary>
/// One engine per data directory: a second <c>hands engine</c> on a directory in use is refused before it touches
/// anything, naming the holder's pid; the first is unaffected; and when the holder is killed with SIGKILL the kernel's
/// release of its flock lets the next one start, because no process the engine started (runc, CRIU, the sandboxes)
/// inherited the lock's descriptor.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SecondEngineTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_second_engine_on_a_data_directory_in_use_is_refused_and_the_next_starts_once_the_holder_is_killed()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-lock-" + Guid.NewGuid().ToString("N")[..8]);
        var lockFile = DataDirectoryLock.PathIn(data);
        try
        {
            string parent, fork, snapshot;
            await using (var first = await EngineProcess.StartAsync(data, crashAt: null))
            {
                using var client = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = first.ApiAddress, ApiKey = EngineFixture.ApiKey, MaxRetries = 0 });
                // runc started the parent, CRIU dumped it and restored the fork: all children of the engine, none may hold the lock.
                var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
                parent = created.CanonicalId;
                await client.Proxy(created).WriteFileAsync("/workspace/kept.txt", "kept"u8.ToArray());
                snapshot = (await client.SnapshotAsync(parent, SnapshotType.Memory)).SnapshotId;
                fork = (await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot })).CanonicalId;
                Assert.Equal([first.Pid], HoldersOf(lockFile));
                // Close-on-exec: a runc or CRIU still running when the engine dies must not keep the next one out.
                Assert.True(IsCloseOnExec(first.Pid, lockFile), "the engine's descriptor of its lock file is inheritable (no O_CLOEXEC)");

                var (exitCode, output) = await EngineProcess.StartRefusedAsync(data);
                Assert.True(exitCode == 1, $"the second engine exited {exitCode}:\n{output}");
                Assert.Contains($"another engine is using the data directory {data}: pid {first.Pid} (", output, StringComparison.Ordinal);
                // In process, the same refusal is a typed error naming the holder.
                var refused = await Assert.ThrowsAsync<DataDirectoryInUseException>(() => EngineFixture.StartEngineAsync(data));
                Assert.Equal((first.Pid, 409), (refused.HolderPid, refused.Status));

                // The first noticed nothing: it serves, its sandboxes run with their files, its volume is still mounted.
                Assert.Equal([first.Pid], HoldersOf(lockFile));
                await AssertKeptAsync(client, parent);
                await AssertKeptAsync(client, fork);
                Assert.Contains(Storage.DataVolume.MountPointOf(data), File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]));

                await first.KillAsync();
            }

            // The sandboxes outlived their engine and hold no copy of its lock.
            Assert.Empty(HoldersOf(lockFile));
            var restart = Stopwatch.StartNew();
            var engine = await EngineFixture.StartEngineAsync(data);
            restart.Stop();
            try
            {
                using var client = EngineFixture.NewClient(engine);
                Assert.Equal([Environment.ProcessId], HoldersOf(lockFile));
                await AssertKeptAsync(client, parent);
                await AssertKeptAsync(client, fork);
                output.WriteLine($"a new engine served {restart.ElapsedMilliseconds} ms after it was started on the killed engine's data, its two sandboxes re-attached");
                await client.DeleteAsync(fork);
                await client.DeleteAsync(parent);
                await client.DeleteSnapshotAsync(snapshot);
            }
            finally
            {
                await engine.DisposeAsync();
            }

            Assert.Empty(HoldersOf(lockFile));
            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
        }
    }

    private static async Task AssertKeptAsync(TensorlakeClient client, string sandbox)
    {
        var info = await client.GetAsync(sandbox);
        Assert.Equal(SandboxStatus.Running, info.Status);
        Assert.Equal("kept", Encoding.UTF8.GetString(await client.Proxy(info).ReadFileAsync("/workspace/kept.txt")));
    }

    /// <summary>Whether <paramref name="pid"/>'s descriptor of <paramref name="path"/> has O_CLOEXEC (the <c>flags:</c> line of its fdinfo, octal).</summary>
    private static bool IsCloseOnExec(int pid, string path)
    {
        var fd = Path.GetFileName(Directory.EnumerateFileSystemEntries($"/proc/{pid}/fd").Single(f => new FileInfo(f).LinkTarget == path));
        var flags = File.ReadLines($"/proc/{pid}/fdinfo/{fd}").Single(l => l.StartsWith("flags:", StringComparison.Ordinal))["flags:".Length..].Trim();
        const int closeOnExec = 0x80000;
        return (Convert.ToInt32(flags, 8) & closeOnExec) != 0;
    }

    /// <summary>The pids of every process with a descriptor open on <paramref name="path"/>.</summary>
    private static List<int> HoldersOf(string path)
    {
        var holders = new List<int>();
        foreach (var process in Directory.EnumerateDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)))
        {
            try
            {
                if (Directory.EnumerateFileSystemEntries($"/proc/{process}/fd").Any(fd => new FileInfo(fd).LinkTarget == path))
                {
                    holders.Add(int.Parse(process!, System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // The process ended while it was being looked at.
            }
        }

        return holders;
    }
}
