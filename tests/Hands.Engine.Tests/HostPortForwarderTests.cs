using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// <c>hands engine</c> serves its sandboxes' host-port forwards (a worker's only way to the control plane) from a
/// forwarder process of its own. Attacked by killing: the engine with SIGKILL while a sandbox talks to the host, then
/// the forwarder itself; the sandbox's traffic goes on through both, the allow-list holds while no engine runs, and
/// nothing is left once the last sandbox and the engine are gone.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class HostPortForwarderTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task The_forwards_outlive_a_killed_engine_and_a_killed_forwarder_is_replaced()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-fwd-" + Guid.NewGuid().ToString("N")[..8]);
        var hostPort = EngineFixture.FreePort();
        await using var host = await HostRecorder.StartAsync(hostPort);
        var seen = host.Seen;
        int Ticks() => seen.Count(p => p == "GET /tick");

        try
        {
            string sandboxId;
            int forwarderPid;
            await using (var first = await EngineProcess.StartAsync(data, null, [hostPort]))
            {
                using var client = Client(first.ApiAddress);
                var sandbox = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
                sandboxId = sandbox.CanonicalId;
                await client.UpdateAsync(sandboxId, new UpdateSandboxRequest { HostPortRoutes = new() { [hostPort] = ["GET /tick"] } });
                // Bounded: at most 900 rounds of two requests, about three minutes.
                var url = $"http://{Network.HostPortForwards.HostName}:{hostPort}";
                await client.Proxy(sandbox).StartProcessAsync(new StartProcessRequest
                {
                    Command = "bash",
                    Args = ["-c", $"for i in $(seq 1 900); do curl -s -m 2 {url}/tick >/dev/null; curl -s -m 2 {url}/denied >/dev/null; sleep 0.1; done"],
                    Name = "talker",
                });
                await Eventually.TrueAsync(() => Ticks() > 0, "the sandbox to reach the host", Bound);
                forwarderPid = Assert.Single(Leftovers.ForwarderProcesses(data));

                await first.KillAsync();
                var atDeath = Ticks();
                await Eventually.TrueAsync(() => Ticks() >= atDeath + 5, "requests reaching the host while the engine is dead", Bound);
                Assert.DoesNotContain("GET /denied", seen);
            }

            await using var second = await EngineProcess.StartAsync(data, null, [hostPort]);
            using (var client = Client(second.ApiAddress))
            {
                // Adopted, not replaced: the same forwarder serves on, and the sandbox's traffic never stopped.
                Assert.Equal(forwarderPid, Assert.Single(Leftovers.ForwarderProcesses(data)));
                var adopted = Ticks();
                await Eventually.TrueAsync(() => Ticks() >= adopted + 5, "requests after the engine came back", Bound);

                // The forwarder killed: the engine starts another with the same forwards and allow-lists.
                using (var doomed = System.Diagnostics.Process.GetProcessById(forwarderPid))
                {
                    doomed.Kill();
                }

                await Eventually.TrueAsync(() => Leftovers.ForwarderProcesses(data) is [var replacement] && replacement != forwarderPid,
                    "a new forwarder after the first was killed", Bound);
                var replaced = Ticks();
                await Eventually.TrueAsync(() => Ticks() >= replaced + 5, "requests through the new forwarder", Bound);
                Assert.DoesNotContain("GET /denied", seen);

                await client.DeleteAsync(sandboxId);
            }

            // The last sandbox gone and the engine stopped in order: the forwarder goes too.
            await second.StopAsync();
            await Eventually.TrueAsync(() => Leftovers.ForwarderProcesses(data).Count == 0, "the forwarder to exit with the engine after its last sandbox", Bound);
            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
        }
    }

    /// <summary>
    /// Several sandboxes, each holding one keep-alive connection to the host through the forwarder, across an engine
    /// killed and started again: every connection carries a second request afterwards. The restarted engine once told
    /// the forwarder its sandboxes one at a time, and each partial state closed the listeners (and cut the connections)
    /// of the sandboxes not yet named; a worker whose heartbeat was in flight then lost its lease.
    /// </summary>
    [Fact]
    public async Task An_engine_restart_cuts_no_sandboxs_connection_through_the_forwarder()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-fwd-" + Guid.NewGuid().ToString("N")[..8]);
        var hostPort = EngineFixture.FreePort();
        await using var host = await HostRecorder.StartAsync(hostPort);
        var seen = host.Seen;
        const int Sandboxes = 3;
        try
        {
            var sandboxes = new List<CreateSandboxResponse>();
            await using (var first = await EngineProcess.StartAsync(data, null, [hostPort]))
            {
                using var client = Client(first.ApiAddress);
                for (var i = 0; i < Sandboxes; i++)
                {
                    var sandbox = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
                    sandboxes.Add(sandbox);
                    // One connection, one request now and one once /tmp/go exists (bounded: at most 60 s of waiting).
                    var request = $"printf 'GET /%s HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n' \"$1\" >&3";
                    await client.Proxy(sandbox).StartProcessAsync(new StartProcessRequest
                    {
                        Command = "bash",
                        Args = ["-c", $$"""
                            send() { {{request}}; }
                            exec 3<>/dev/tcp/{{Network.HostPortForwards.HostName}}/{{hostPort}} || exit 1
                            send before-{{i}}
                            for t in $(seq 1 600); do [ -e /tmp/go ] && break; sleep 0.1; done
                            send after-{{i}}
                            timeout 10 cat <&3 >/dev/null
                            """],
                        Name = "holder",
                    });
                }

                await Eventually.TrueAsync(() => Enumerable.Range(0, Sandboxes).All(i => seen.Contains($"GET /before-{i}")),
                    "every sandbox's first request through its connection", Bound);
                await first.KillAsync();
            }

            await using var second = await EngineProcess.StartAsync(data, null, [hostPort]);
            using (var client = Client(second.ApiAddress))
            {
                foreach (var sandbox in sandboxes)
                {
                    await client.Proxy(await client.GetAsync(sandbox.CanonicalId)).WriteFileAsync("/tmp/go", "go"u8.ToArray());
                }

                await Eventually.TrueAsync(() => Enumerable.Range(0, Sandboxes).All(i => seen.Contains($"GET /after-{i}")),
                    "every sandbox's second request through the connection it held across the restart", Bound);
                foreach (var sandbox in sandboxes)
                {
                    await client.DeleteAsync(sandbox.CanonicalId);
                }
            }

            await second.StopAsync();
            await Eventually.TrueAsync(() => Leftovers.ForwarderProcesses(data).Count == 0, "the forwarder to exit with the engine after its last sandbox", Bound);
            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
        }
    }

    [Fact]
    public async Task A_descriptor_the_engine_was_started_with_reaches_neither_its_forwarder_nor_its_sandboxes()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-fds-" + Guid.NewGuid().ToString("N")[..8]);
        var held = Path.Combine(Path.GetTempPath(), "hands-held-" + Guid.NewGuid().ToString("N")[..8]);
        var hostPort = EngineFixture.FreePort();
        await using var host = await HostRecorder.StartAsync(hostPort);
        try
        {
            await using (var engine = await EngineProcess.StartAsync(data, null, [hostPort], inheritedFile: held))
            {
                using var client = Client(engine.ApiAddress);
                var sandbox = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
                await client.Proxy(sandbox).StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["600"], Name = "long-lived" });
                await Eventually.TrueAsync(() => Leftovers.ForwarderProcesses(data).Count == 1, "the host-port forwarder to start", Bound);

                // The engine holds it (so there was something to inherit); nothing it started does: not the forwarder,
                // not runc's container, its init, daemon or the process started in it.
                Assert.Equal([engine.Pid], Holders(held));
                await client.DeleteAsync(sandbox.CanonicalId);
                await engine.StopAsync();
            }

            await Eventually.TrueAsync(() => Leftovers.ForwarderProcesses(data).Count == 0, "the forwarder to exit with the engine after its last sandbox", Bound);
            Assert.Empty(Holders(held));
            Leftovers.AssertNone(data);
        }
        finally
        {
            Leftovers.Remove(data);
            File.Delete(held);
        }
    }

    /// <summary>The pids of every process with <paramref name="file"/> open (a link to it in /proc/PID/fd).</summary>
    private static List<int> Holders(string file)
    {
        var holders = new List<int>();
        foreach (var process in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(process), out var pid))
            {
                continue;
            }

            try
            {
                if (Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")).Any(fd => new FileInfo(fd).LinkTarget == file))
                {
                    holders.Add(pid);
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile, or a kernel thread.
            }
        }

        return holders;
    }

    private static TensorlakeClient Client(Uri api) => new(new TensorlakeClientOptions { ApiUrl = api, ApiKey = EngineFixture.ApiKey, MaxRetries = 0 });
}
