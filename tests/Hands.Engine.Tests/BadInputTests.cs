using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>Each bad request gets its documented status and a message that says what to do; nothing is left on the host.</summary>
[Collection(EngineCollection.Name)]
public sealed class BadInputTests(EngineFixture engine)
{
    private async Task<TensorlakeException> CreateFails(CreateSandboxRequest request) =>
        await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.CreateAsync(request));

    [Fact]
    public async Task Create_refuses_unknown_images_bad_names_bad_ports_and_duplicate_names()
    {
        var unknown = await CreateFails(new CreateSandboxRequest { Image = "no-such-image" });
        Assert.Equal(400, unknown.Status);
        Assert.Contains("known images: host, debian", unknown.ErrorMessage, StringComparison.Ordinal);

        var badName = await CreateFails(new CreateSandboxRequest { Image = "host", Name = "Not A Slug" });
        Assert.Equal(400, badName.Status);
        Assert.Contains("lowercase letters, digits or '-'", badName.ErrorMessage, StringComparison.Ordinal);

        foreach (var port in new[] { 0, 70000, 9501 })
        {
            var badPort = await CreateFails(new CreateSandboxRequest { Image = "host", ExposedPorts = [port] });
            Assert.Equal(400, badPort.Status);
            Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), badPort.ErrorMessage, StringComparison.Ordinal);
        }

        var name = SandboxWorkloads.UniqueName("dup");
        await using var first = await engine.CreateAsync(new CreateSandboxRequest { Name = name });
        var duplicate = await CreateFails(new CreateSandboxRequest { Image = "host", Name = name });
        Assert.Equal(409, duplicate.Status);

        var missing = await CreateFails(new CreateSandboxRequest { SnapshotId = "nnosuchsnapshot00000" });
        Assert.Equal(404, missing.Status);
        Leftovers.AssertNone(engine.DataDirectory + "-nothing");
        Assert.Single(await engine.Client.ListAllAsync(SandboxStatus.Running).ToListAsync(), s => s.Name == name);
    }

    [Fact]
    public async Task Files_refuse_dot_dot_and_processes_report_missing_programs()
    {
        await using var sandbox = await engine.CreateAsync();
        var traversal = await Assert.ThrowsAsync<TensorlakeException>(() => sandbox.Proxy.ReadFileAsync("/workspace/../etc/passwd"));
        Assert.Equal((403, "PATH_TRAVERSAL"), (traversal.Status, traversal.Code));
        var directory = await Assert.ThrowsAsync<TensorlakeException>(() => sandbox.Proxy.ReadFileAsync("/workspace"));
        Assert.Equal((400, "IS_DIRECTORY"), (directory.Status, directory.Code));
        var notFound = await Assert.ThrowsAsync<TensorlakeException>(() => sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "no-such-program" }));
        Assert.Equal(500, notFound.Status);
        Assert.Contains("no-such-program", notFound.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_process_that_floods_its_output_is_capped_and_the_sandbox_stays_responsive()
    {
        await using var sandbox = await engine.CreateAsync();
        // About 40 MiB of output, five times the per-stream capture limit.
        var flood = await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "bash", Args = ["-c", "head -c 30000000 /dev/zero | tr '\\0' 'x' | fold -w 100; echo; echo last-line"] });
        var done = await sandbox.Proxy.FollowOutputAsync(flood.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "stdout").CountAsync();
        Assert.True(done > 0);
        var output = await sandbox.Proxy.GetOutputAsync(flood.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "stdout");
        Assert.Equal("last-line", output.Lines[^1]);
        Assert.True(output.Lines.Count < 300_000, $"captured {output.Lines.Count} lines; the cap keeps the newest 8 MiB");
        Assert.Equal(0, (await sandbox.RunAsync("true")).ExitCode);
    }

    [Fact]
    public async Task Snapshots_of_terminated_or_suspended_sandboxes_and_restores_of_memory_snapshots_are_refused_clearly()
    {
        var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Name = SandboxWorkloads.UniqueName("gone") });
        await engine.Client.SuspendAsync(sandbox.Id);
        var suspended = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.SnapshotAsync(sandbox.Id));
        Assert.Equal(400, suspended.Status);
        Assert.Contains("resume it first", suspended.ErrorMessage, StringComparison.Ordinal);

        await sandbox.DisposeAsync();
        var terminated = await Assert.ThrowsAsync<TensorlakeException>(() => engine.Client.SnapshotAsync(sandbox.Id));
        Assert.Equal(400, terminated.Status);
        Assert.Contains("terminated", terminated.ErrorMessage, StringComparison.Ordinal);
        await engine.Client.DeleteAsync(sandbox.Id);
    }

    [Fact]
    public async Task The_ingress_requires_the_key_and_an_exposed_port_unless_access_is_opened()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { ExposedPorts = [SandboxWorkloads.CounterPort] });
        await SandboxWorkloads.StartCounterAsync(engine.Engine, sandbox);

        using var noKey = await SandboxWorkloads.PortGetAsync(engine.Engine, sandbox.Id, SandboxWorkloads.CounterPort, "/", key: null);
        Assert.Equal(401, (int)noKey.StatusCode);
        using var wrongPort = await SandboxWorkloads.PortGetAsync(engine.Engine, sandbox.Id, 8081, "/", EngineFixture.ApiKey);
        Assert.Equal(403, (int)wrongPort.StatusCode);
        Assert.Contains("PORT_NOT_EXPOSED", await wrongPort.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        using var management = await SandboxWorkloads.PortGetAsync(engine.Engine, sandbox.Id, 9501, "/api/v1/health", key: null);
        Assert.Equal(401, (int)management.StatusCode);

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest { AllowUnauthenticatedAccess = true });
        using var open = await SandboxWorkloads.PortGetAsync(engine.Engine, sandbox.Id, SandboxWorkloads.CounterPort, "/", key: null);
        Assert.Equal(200, (int)open.StatusCode);
        using var stillClosed = await SandboxWorkloads.PortGetAsync(engine.Engine, sandbox.Id, 9501, "/api/v1/health", key: null);
        Assert.Equal(401, (int)stillClosed.StatusCode);
    }
}
