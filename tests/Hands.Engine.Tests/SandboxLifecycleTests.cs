using System.Text;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>Create, exec and files on real runc containers through the Tensorlake client.</summary>
[Collection(EngineCollection.Name)]
public sealed class SandboxLifecycleTests(EngineFixture engine)
{
    [Fact]
    public async Task A_created_sandbox_runs_commands_and_serves_files()
    {
        await using var sandbox = await engine.CreateAsync();
        var info = await engine.Client.GetAsync(sandbox.Id);
        Assert.Equal(SandboxStatus.Running, info.Status);
        Assert.NotNull(info.SandboxUrl);

        var result = await sandbox.RunAsync("echo out; echo err >&2; hostname; exit 3");
        Assert.Equal(3, result.ExitCode);
        Assert.Equal($"out\n{sandbox.Id}", result.Stdout);
        Assert.Equal("err", result.Stderr);

        await sandbox.Proxy.WriteFileAsync("/workspace/notes/a.txt", Encoding.UTF8.GetBytes("hello"));
        Assert.Equal("hello", Encoding.UTF8.GetString(await sandbox.Proxy.ReadFileAsync("/workspace/notes/a.txt")));
        var cat = await sandbox.RunAsync("cat /workspace/notes/a.txt");
        Assert.Equal("hello", cat.Stdout);
        var listing = await sandbox.Proxy.ListDirectoryAsync("/workspace/notes");
        Assert.Equal("a.txt", Assert.Single(listing.Entries).Name);
        await sandbox.Proxy.DeleteFileAsync("/workspace/notes/a.txt");
        var missing = await Assert.ThrowsAsync<TensorlakeException>(() => sandbox.Proxy.ReadFileAsync("/workspace/notes/a.txt"));
        Assert.Equal(404, missing.Status);
    }
}

/// <summary>A filesystem snapshot registered as an image launches with its files, ENV and WORKDIR.</summary>
[Collection(EngineCollection.Name)]
public sealed class ImageRegistrationTests(EngineFixture engine)
{
    [Fact]
    public async Task A_registered_image_carries_its_files_env_and_workdir()
    {
        var name = SandboxWorkloads.UniqueName("img");
        await using (var builder = await engine.CreateAsync())
        {
            await builder.RunAsync("mkdir -p /srv/app && echo built > /srv/app/built.txt");
            var snapshot = await engine.Client.SnapshotAsync(builder.Id);
            await engine.Client.RegisterImageAsync(name, snapshot.SnapshotId, "FROM host\nWORKDIR /srv/app\nENV GREETING=hello");
        }

        try
        {
            await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Image = name });
            var seen = await sandbox.RunAsync("pwd; echo $GREETING; cat built.txt");
            Assert.Equal("/srv/app\nhello\nbuilt", seen.Stdout);
            var missing = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.RegisterImageAsync(name + "-x", "nnosuchsnapshot00000", ""));
            Assert.Equal(404, missing.Status);
        }
        finally
        {
            await engine.Client.DeleteImageAsync(name);
        }
    }
}
