using System.Globalization;
using Hands.Engine.Runtime;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// The stronger mode (<c>--userns</c>): sandbox root is host id 1000000000, not host root, seen from the host; the
/// sandbox still runs commands as root and tl-user, freezes, takes filesystem snapshots and forks from them; the
/// memory features say plainly that they are off; and a data directory keeps the mode it was made in.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class UserNamespaceTests
{
    [Fact]
    public async Task Sandbox_root_is_an_unprivileged_host_id_and_the_sandbox_still_works()
    {
        await using var own = await OwnEngine.StartAsync("hands-engine-userns", o => { o.UserNamespace = true; o.VolumeMb = 1024; });
        var (client, data) = (own.Client, own.DataDirectory);
        var created = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Name = "userns-box" });
        var id = created.CanonicalId;
        Assert.Equal("runc-userns", (await client.GetAsync(id)).Runtime);
        var proxy = client.Proxy(created);

        var inside = await proxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "id -u; cat /proc/self/uid_map; echo made > /workspace/root.txt"] });
        var lines = inside.Stdout.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("0", lines[0]);
        Assert.Equal(["0", SandboxIdentity.HostBase.ToString(CultureInfo.InvariantCulture), "65536"], lines[1].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("1000", (await proxy.RunAsync(new RunProcessRequest { Command = "id", Args = ["-u"], User = "tl-user" })).Stdout.Trim());
        await proxy.WriteFileAsync("/home/tl-user/note.txt", "hi"u8.ToArray());
        Assert.Equal("hi", (await proxy.RunAsync(new RunProcessRequest { Command = "cat", Args = ["/home/tl-user/note.txt"], User = "tl-user" })).Stdout);

        // Seen from the host: the sandbox's processes and the files its root writes belong to an id no host account has.
        var state = await Hosting.CommandRunner.RunCheckedAsync("runc", ["--root", Path.Combine(data, "runc"), "state", id]);
        var pid = System.Text.Json.JsonDocument.Parse(state.Stdout).RootElement.GetProperty("pid").GetInt32();
        var uidLine = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("Uid:", StringComparison.Ordinal));
        Assert.All(uidLine.Split('\t', StringSplitOptions.RemoveEmptyEntries).Skip(1), uid => Assert.Equal(SandboxIdentity.HostBase.ToString(CultureInfo.InvariantCulture), uid.Trim()));
        var upperFile = Path.Combine(Storage.DataVolume.MountPointOf(data), "sandboxes", id, "disk", "upper", "workspace", "root.txt");
        Assert.Equal(SandboxIdentity.HostBase.ToString(CultureInfo.InvariantCulture), (await Hosting.CommandRunner.RunCheckedAsync("stat", ["-c", "%u", upperFile])).Stdout.Trim());

        // The data directory lets sandbox root's group pass (runc mounts the root from inside the namespace), not host users.
        foreach (var path in new[] { upperFile, Path.Combine(data, "engine.db"), Path.Combine(data, "volume.img") })
        {
            var asNobody = await Hosting.CommandRunner.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "head", "-c", "1", path]);
            Assert.True(asNobody.ExitCode != 0, $"a host user read {path}");
        }

        // Freeze and filesystem snapshots work; the memory features are off and say why.
        Assert.True(await client.SuspendAsync(id));
        Assert.True(await client.ResumeAsync(id));
        var hibernate = await Assert.ThrowsAsync<TensorlakeException>(() => client.SuspendAsync(id, hibernate: true));
        Assert.Equal(400, hibernate.Status);
        var memory = await Assert.ThrowsAsync<TensorlakeException>(() => client.SnapshotAsync(id, SnapshotType.Memory));
        Assert.Contains("--userns", memory.Message, StringComparison.Ordinal);
        var snapshot = await client.SnapshotAsync(id, SnapshotType.Filesystem);
        var fork = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
        var forkProxy = client.Proxy(fork);
        Assert.Equal("made", (await forkProxy.RunAsync(new RunProcessRequest { Command = "cat", Args = ["/workspace/root.txt"] })).Stdout.Trim());
        Assert.Equal("ok", (await forkProxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "echo more >> /workspace/root.txt && echo ok"] })).Stdout.Trim());

        await client.DeleteAsync(fork.CanonicalId);
        await client.DeleteAsync(id);
        await client.DeleteSnapshotAsync(snapshot.SnapshotId);

        // The data directory's files are owned by the sandbox range now: starting it without --userns is refused.
        await own.StopAsync();
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => EngineFixture.StartEngineAsync(data, o => o.VolumeMb = 1024));
        Assert.Contains("--userns", refused.Message, StringComparison.Ordinal);
    }
}
