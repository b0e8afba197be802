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
