using System.Diagnostics;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>
/// kill -9 of a real <c>hands control-plane</c> process loses no acknowledged write: after a restart on the same data
/// directory, everything answered before the kill is there, and streams resume from history.
/// </summary>
public sealed class DurabilityTests
{
    private static Process StartControlPlane(string data, int port)
    {
        var hands = Path.Combine(AppContext.BaseDirectory, "hands.dll");
        var psi = new ProcessStartInfo("dotnet")
        {
            ArgumentList = { hands, "control-plane", "--urls", $"http://127.0.0.1:{port}", "--data", data },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["HANDS_API_KEY"] = TestControlPlane.ApiKey; // not on the command line: it would show in ps
        return Process.Start(psi)!;
    }

    private static int FreePort()
    {
        using var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        return ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitHealthyAsync(Uri baseUrl)
    {
        using var http = new HttpClient();
        for (var i = 0; i < 200; i++)
        {
            try
            {
                if ((await http.GetAsync(new Uri(baseUrl, "/healthz"))).IsSuccessStatusCode)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }

            await Task.Delay(100);
        }

        throw new TimeoutException("control plane did not start");
    }

    [Fact]
    public async Task Kill_9_and_restart_loses_no_acknowledged_write()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-durability-" + Guid.NewGuid().ToString("N")[..8]);
        var port = FreePort();
        var baseUrl = new Uri($"http://127.0.0.1:{port}");
        var process = StartControlPlane(data, port);
        try
        {
            await WaitHealthyAsync(baseUrl);
            using var app = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(TestControlPlane.ApiKey), new ManagedAgentsClientOptions { BaseUrl = baseUrl, MaxRetries = 0 });
            var env = await app.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "durable", Config = TestControlPlane.Json("""{"type":"self_hosted"}""") });
            var key = (await app.Environments.CreateKeyAsync(env.Id)).Key;
            var agent = await app.Agents.CreateAsync(new CreateAgentRequest { Name = "a", Model = TestControlPlane.Json("\"scripted:demo\""), Tools = [TestControlPlane.Json("""{"type":"agent_toolset_20260401"}""")] });
            var session = await app.Sessions.CreateAsync(new CreateSessionRequest { Agent = TestControlPlane.Json($"\"{agent.Id}\""), EnvironmentId = env.Id });
            using var worker = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(key), new ManagedAgentsClientOptions { BaseUrl = baseUrl, MaxRetries = 0 });
            var item = (await worker.Work.PollAsync(env.Id, 100))!;
            await worker.Work.AckAsync(env.Id, item.Id);
            var beat = await worker.Work.HeartbeatAsync(env.Id, item.Id, WorkOperations.NoHeartbeat);
            await app.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("go")]);
            var toolUse = (await app.Events.ListAllAsync(session.Id).ToListAsync()).Single(e => e.Type == EventTypes.AgentToolUse);
            var posted = await worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(toolUse.Id!, "wrote 19 bytes")]);
            var before = await app.Events.ListAllAsync(session.Id).ToListAsync();

            process.Kill(entireProcessTree: true); // SIGKILL: no shutdown hooks run
            await process.WaitForExitAsync();
            process.Dispose();
            process = StartControlPlane(data, port);
            await WaitHealthyAsync(baseUrl);

            var after = await app.Events.ListAllAsync(session.Id).ToListAsync();
            Assert.Equal(before.Select(e => e.Id), after.Select(e => e.Id));
            Assert.Contains(after, e => e.Id == posted[0].Id);
            Assert.Equal("active", (await app.Work.GetAsync(env.Id, item.Id)).State);
            Assert.True((await worker.Work.HeartbeatAsync(env.Id, item.Id, beat.LastHeartbeat!)).LeaseExtended); // the lease survived
            // the loop resumes where it was: the second tool call is still awaited
            var read = after.Last(e => e.Type == EventTypes.AgentToolUse);
            Assert.Equal("read", read.Name);
            var resumed = await worker.Events.SendAsync(session.Id, [TestControlPlane.ToolResult(read.Id!, "hi from the sandbox")]);
            var tail = await TestControlPlane.CollectAsync(app, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), resumed[0].Id);
            Assert.Equal("hello.txt contains: hi from the sandbox", tail.Single(e => e.Type == EventTypes.AgentMessage).Text);
            // a stream can resume from any event of the history written before the crash
            var replay = await TestControlPlane.CollectAsync(app, session.Id, e => e.Id == posted[0].Id, before[0].Id);
            var upTo = before.FindIndex(e => e.Id == posted[0].Id);
            Assert.Equal(before.Skip(1).Take(upTo).Select(e => e.Id), replay.Select(e => e.Id));
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process.Dispose();
            Directory.Delete(data, recursive: true);
        }
    }
}
