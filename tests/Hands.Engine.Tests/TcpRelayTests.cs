using System.Net;
using System.Net.Sockets;
using System.Text;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>A plain TCP relay reaches a non-HTTP port and wakes its sandbox; an engine that cannot run says what to install.</summary>
[Collection(EngineCollection.Name)]
public sealed class TcpRelayTests(EngineFixture engine)
{
    private const string EchoServer = """
        import socket
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 7000)); s.listen()
        while True:
            c, _ = s.accept()
            try:
                data = c.recv(1024)
                if data:
                    c.sendall(b'echo:' + data)
            except OSError:
                pass
            c.close()
        """;

    [Fact]
    public async Task A_tcp_relay_carries_a_non_http_protocol_and_wakes_a_suspended_sandbox()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Name = SandboxWorkloads.UniqueName("tcp"), ExposedPorts = [7000] });
        await sandbox.Proxy.WriteFileAsync("/opt/echo.py", Encoding.UTF8.GetBytes(EchoServer));
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["/opt/echo.py"] });
        var relay = IPEndPoint.Parse(await engine.Client.OpenTcpRelayAsync(sandbox.Id, 7000));
        Assert.True(IPAddress.IsLoopback(relay.Address));

        Assert.Equal("echo:one", await ExchangeAsync(relay, "one"));
        await engine.Client.SuspendAsync(sandbox.Id, hibernate: true);
        Assert.Equal("echo:two", await ExchangeAsync(relay, "two"));
        Assert.Equal(SandboxStatus.Running, (await engine.Client.GetAsync(sandbox.Id)).Status);
    }

    [Fact]
    public async Task An_engine_without_its_runtime_refuses_to_start_and_names_the_fix()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-noruntime-" + Guid.NewGuid().ToString("N")[..8]);
        var refused = await Assert.ThrowsAsync<EngineException>(() => EngineFixture.StartEngineAsync(data, o => o.RuntimeBinary = "/nonexistent/runc"));
        Assert.Contains("apt-get install runc", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(data), "a refused start leaves nothing behind");
    }

    [Fact]
    public async Task An_engine_missing_several_prerequisites_names_them_all_with_one_install_line()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-noprereq-" + Guid.NewGuid().ToString("N")[..8]);
        var refused = await Assert.ThrowsAsync<EngineException>(() => EngineFixture.StartEngineAsync(data, o =>
        {
            o.RuntimeBinary = "/nonexistent/runc";
            o.InitBinary = "/nonexistent/tini-static";
        }));
        Assert.Contains("'/nonexistent/runc'", refused.Message, StringComparison.Ordinal);
        Assert.Contains("'tini' (each sandbox's init, /nonexistent/tini-static;", refused.Message, StringComparison.Ordinal);
        Assert.Contains("apt-get install runc tini", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(data), "a refused start leaves nothing behind");
    }

    private static async Task<string> ExchangeAsync(IPEndPoint relay, string message)
    {
        for (var attempt = 0; ; attempt++)
        {
            using var client = new TcpClient();
            await client.ConnectAsync(relay);
            var stream = client.GetStream();
            await stream.WriteAsync(Encoding.UTF8.GetBytes(message));
            client.Client.Shutdown(SocketShutdown.Send);
            using var reader = new StreamReader(stream);
            var answer = await reader.ReadToEndAsync();
            if (answer.Length > 0 || attempt > 100)
            {
                return answer;
            }

            // The echo server may still be starting; the relay closes when nothing answers.
            await Task.Delay(50);
        }
    }
}
