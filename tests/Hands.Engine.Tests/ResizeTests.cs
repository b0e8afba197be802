using System.Globalization;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// Tensorlake's live resize on real sandboxes: memory and whole CPUs change in the sandbox's cgroup while its processes
/// run (and in a frozen one), the disk grows online, a memory limit below what the sandbox uses fails with nothing
/// changed, and the refusals (shrinking the disk, fractional CPUs, a resize mixed with other fields) are 400s.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class ResizeTests(EngineFixture engine)
{
    [Fact]
    public async Task Memory_cpus_and_disk_change_under_running_processes()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Name = "resize-live", Resources = new SandboxResources { Cpus = 1, MemoryMb = 256, DiskMb = 256 } });
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["600"], Name = "bystander" });

        var grown = await engine.Client.ResizeAsync(sandbox.Id, cpus: 2, memoryMb: 512);
        Assert.True(grown.ResourceResize?.Status == "succeeded", grown.ResourceResize?.ErrorMessage);
        Assert.Equal(1, grown.ResourceResize!.Generation);
        Assert.Equal((2.0, 512), (grown.Resources!.Cpus!.Value, grown.Resources.MemoryMb!.Value));
        // As the kernel sees it: the cgroup's limit and quota.
        Assert.Equal(512L << 20, CgroupValue("memory", sandbox.Id, "memory.limit_in_bytes"));
        Assert.Equal(200_000, CgroupValue("cpu", sandbox.Id, "cpu.cfs_quota_us"));

        // The disk grows online where the engine may resize ext4 (CAP_SYS_RESOURCE); elsewhere it is refused, nothing changed.
        if (Hands.Engine.Storage.SandboxDisk.CanGrowOnline)
        {
            var disk = await engine.Client.ResizeAsync(sandbox.Id, diskMb: 512);
            Assert.True(disk.ResourceResize?.Status == "succeeded", disk.ResourceResize?.ErrorMessage);
            var size = await sandbox.RunAsync("df -m --output=size /workspace | tail -1");
            Assert.InRange(int.Parse(size.Stdout.Trim(), CultureInfo.InvariantCulture), 440, 512);
        }
        else
        {
            var refused = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.ResizeAsync(sandbox.Id, diskMb: 512));
            Assert.Equal(409, refused.Status);
            Assert.Contains("CAP_SYS_RESOURCE", refused.Message, StringComparison.Ordinal);
            Assert.Equal(256, (await engine.Client.GetAsync(sandbox.Id)).Resources!.Disk);
            Assert.Equal(1, (await engine.Client.GetAsync(sandbox.Id)).ResourceResize!.Generation);
        }

        // A process that would not have fit in 256 MiB now runs, and the one started before is untouched.
        var big = await sandbox.RunAsync("head -c 300M /dev/zero | tail -c 1 >/dev/null && python3 -c 'b = bytearray(350 << 20); print(len(b) >> 20)'");
        Assert.Equal("350", big.Stdout.Trim());
        Assert.Equal("running", (await sandbox.Proxy.GetProcessAsync("bystander")).Status);

        // Frozen: the cgroup changes all the same, and the sandbox wakes with it.
        await engine.Client.SuspendAsync(sandbox.Id);
        await engine.Client.WaitForStatusAsync(sandbox.Id, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30));
        var frozen = await engine.Client.ResizeAsync(sandbox.Id, memoryMb: 384);
        Assert.True(frozen.ResourceResize?.Status == "succeeded", frozen.ResourceResize?.ErrorMessage);
        Assert.Equal(384L << 20, CgroupValue("memory", sandbox.Id, "memory.limit_in_bytes"));
        await engine.Client.ResumeAsync(sandbox.Id);
        Assert.Equal("ok", (await sandbox.RunAsync("echo ok")).Stdout.Trim());
    }

    [Fact]
    public async Task A_limit_below_what_the_sandbox_uses_fails_and_changes_nothing()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { MemoryMb = 512 } });
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest
        {
            Command = "python3",
            Args = ["-c", "import time; b = bytearray(200 << 20); [b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; print('held', flush=True); time.sleep(600)"],
            Name = "holder",
        });
        await WaitForOutputAsync(sandbox.Proxy, "holder", "held");

        var shrunk = await engine.Client.ResizeAsync(sandbox.Id, memoryMb: 128);
        Assert.Equal("failed", shrunk.ResourceResize?.Status);
        Assert.True(shrunk.ResourceResize!.ErrorMessage?.Contains("more than 128 MiB", StringComparison.Ordinal) == true, shrunk.ResourceResize.ErrorMessage);
        Assert.Equal(512, shrunk.Resources!.MemoryMb);
        Assert.Equal(512L << 20, CgroupValue("memory", sandbox.Id, "memory.limit_in_bytes"));
        Assert.Equal("running", (await sandbox.Proxy.GetProcessAsync("holder")).Status);
        // The next generation goes through.
        var next = await engine.Client.ResizeAsync(sandbox.Id, memoryMb: 1024);
        Assert.Equal((2, "succeeded"), (next.ResourceResize!.Generation, next.ResourceResize.Status));
    }

    [Fact]
    public async Task Shrinking_the_disk_fractional_cpus_and_a_mixed_update_are_refused()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Resources = new SandboxResources { DiskMb = 256 } });
        var shrink = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.ResizeAsync(sandbox.Id, diskMb: 128));
        Assert.Equal(400, shrink.Status);
        Assert.Contains("can only grow", shrink.Message, StringComparison.Ordinal);

        using var http = new HttpClient();
        foreach (var body in new[] { """{"resources":{"cpus":1.5}}""", """{"resources":{"memory_mb":512},"name":"renamed"}""", """{"resources":{"gpus":1}}""" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Patch, new Uri(engine.Engine.ApiAddress, $"sandboxes/{sandbox.Id}"))
            {
                Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json"),
            };
            request.Headers.Authorization = new("Bearer", EngineFixture.ApiKey);
            using var answer = await http.SendAsync(request);
            Assert.True((int)answer.StatusCode == 400, $"{body}: {(int)answer.StatusCode} {await answer.Content.ReadAsStringAsync()}");
        }

        Assert.Null((await engine.Client.GetAsync(sandbox.Id)).ResourceResize);
    }

    private static long CgroupValue(string controller, string sandboxId, string file) =>
        long.Parse(File.ReadAllText($"/sys/fs/cgroup/{controller}/hands/{sandboxId}/{file}").Trim(), CultureInfo.InvariantCulture);

    private static async Task WaitForOutputAsync(SandboxProxyClient proxy, string process, string text)
    {
        using var bounded = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (var e in proxy.FollowOutputAsync(process, cancellationToken: bounded.Token))
        {
            if (e.Line?.Contains(text, StringComparison.Ordinal) == true)
            {
                return;
            }
        }

        Assert.Fail($"{process} ended without printing '{text}'");
    }
}
