using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// Two established TCP connections to an echo server in a sandbox: one from the test (outside, through the veth) and
/// one from a client in the sandbox over loopback that keeps talking and counts its rounds. A connection that a CRIU
/// dump or restore broke shows as a failed echo or a "broken" line in the sandbox's log.
/// </summary>
internal sealed class EchoPair : IDisposable
{
    public const int Port = 7007;

    private const string Script = """
        import socket, threading, time
        def serve(conn):
            try:
                while True:
                    data = conn.recv(64)
                    if not data:
                        return
                    conn.sendall(data)
            except OSError as e:
                open('/tmp/echo.log', 'a').write('broken server side: %s\n' % e)
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(('0.0.0.0', 7007))
        server.listen(8)
        def accept():
            while True:
                conn, _ = server.accept()
                threading.Thread(target=serve, args=(conn,), daemon=True).start()
        threading.Thread(target=accept, daemon=True).start()
        client = socket.create_connection(('127.0.0.1', 7007))
        rounds = 0
        while True:
            try:
                client.sendall(b'x')
                if client.recv(64) != b'x':
                    raise OSError('wrong echo')
            except OSError as e:
                open('/tmp/echo.log', 'a').write('broken client side: %s\n' % e)
                break
            rounds += 1
            open('/tmp/rounds', 'w').write(str(rounds))
            time.sleep(0.05)
        """;

    private readonly TestSandbox _sandbox;
    private readonly TcpClient _outside;

    private EchoPair(TestSandbox sandbox, TcpClient outside)
    {
        _sandbox = sandbox;
        _outside = outside;
    }

    /// <summary>Starts the server and the inside client, connects from outside, and waits until both talk.</summary>
    public static async Task<EchoPair> StartAsync(EngineServer engine, TestSandbox sandbox)
    {
        await sandbox.Proxy.WriteFileAsync("/opt/echo.py", Encoding.UTF8.GetBytes(Script));
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["/opt/echo.py"], Name = "echo" });
        var address = engine.Sandboxes.SlotOf(engine.Sandboxes.FindAlive(sandbox.Id)!).SandboxAddress;
        TcpClient? outside = null;
        await Eventually.TrueAsync(async () =>
        {
            var attempt = new TcpClient();
            try
            {
                await attempt.ConnectAsync(address, Port);
                outside = attempt;
                return true;
            }
            catch (SocketException)
            {
                attempt.Dispose();
                return false;
            }
        }, "the echo server to listen");
        var pair = new EchoPair(sandbox, outside!);
        Assert.Equal("before", await pair.EchoAsync("before"));
        await Eventually.TrueAsync(async () => await pair.InsideRoundsAsync() > 0, "the inside client to talk");
        return pair;
    }

    /// <summary>Sends a line on the outside connection and answers what came back.</summary>
    public async Task<string> EchoAsync(string line)
    {
        var stream = _outside.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes(line + "\n"));
        var buffer = new byte[64];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        return Encoding.ASCII.GetString(buffer, 0, read).Trim();
    }

    /// <summary>Both connections still work: an echo from outside, and the inside client keeps counting with nothing broken.</summary>
    public async Task AssertBothTalkAsync(string line)
    {
        Assert.Equal(line, await EchoAsync(line));
        var rounds = await InsideRoundsAsync();
        await Eventually.TrueAsync(async () => await InsideRoundsAsync() > rounds + 2, "the inside client to talk on");
        Assert.DoesNotContain("broken", (await _sandbox.RunAsync("cat /tmp/echo.log 2>/dev/null")).Stdout, StringComparison.Ordinal);
    }

    private async Task<int> InsideRoundsAsync() =>
        int.Parse("0" + (await _sandbox.RunAsync("cat /tmp/rounds 2>/dev/null")).Stdout.Trim(), CultureInfo.InvariantCulture);

    public void Dispose() => _outside.Dispose();
}
