using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// The HTTP allow-list at a host-port forward (engine extension <c>host_port_routes</c>), attacked from inside the
/// sandbox against a real Kestrel server on the host: listed routes pass, anything else — another path, an encoded or
/// dotted one, a second request pipelined behind an allowed one, HTTP/2 — never reaches the server.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class HostRouteTests(EngineFixture engine)
{
    [Fact]
    public async Task Only_listed_requests_reach_the_host_and_nothing_rides_behind_them()
    {
        await using var host = await HostRecorder.StartAsync(engine.ControlPlanePort);
        var seen = host.Seen;

        await using var sandbox = await engine.CreateAsync();
        var port = engine.ControlPlanePort;
        var url = $"http://{Network.HostPortForwards.HostName}:{port}";
        var open = await sandbox.RunAsync($"curl -s {url}/v1/sessions/other");
        Assert.Equal("served /v1/sessions/other", open.Stdout);

        await engine.Client.UpdateAsync(sandbox.Id, new UpdateSandboxRequest
        {
            HostPortRoutes = new() { [port] = ["GET /v1/sessions/mine", "POST /v1/sessions/mine/events"] },
        });
        seen.Clear();
        Assert.Equal("served /v1/sessions/mine", (await sandbox.RunAsync($"curl -s {url}/v1/sessions/mine?beta=true")).Stdout);
        Assert.Equal("served /v1/sessions/mine/events", (await sandbox.RunAsync($"curl -s -X POST -d x {url}/v1/sessions/mine/events")).Stdout);
        foreach (var (what, command) in new[]
        {
            ("another session", $"curl -s -w ' %{{http_code}}' {url}/v1/sessions/other"),
            ("another method", $"curl -s -w ' %{{http_code}}' -X DELETE {url}/v1/sessions/mine"),
            ("a dotted path", $"curl -s --path-as-is -w ' %{{http_code}}' {url}/v1/sessions/mine/../other"),
            ("an encoded path", $"curl -s -w ' %{{http_code}}' {url}/v1/sessions/%6dine"),
            ("HTTP/2 prior knowledge", $"curl -s --http2-prior-knowledge -w ' %{{http_code}}' {url}/v1/sessions/mine"),
        })
        {
            var refused = await sandbox.RunAsync(command);
            Assert.False(refused.Stdout.Contains("served", StringComparison.Ordinal), $"{what} got through: {refused.Stdout}");
        }

        // Smuggling: a bare LF ends the head for Kestrel, not for a CRLF-only reader; chunked bodies carry requests in them.
        foreach (var (what, raw) in new[]
        {
            ("a head ended with bare LFs", "GET /v1/sessions/mine HTTP/1.1\\r\\nHost: h\\n\\nGET /v1/sessions/other HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"),
            ("a chunked body", "POST /v1/sessions/mine/events HTTP/1.1\\r\\nHost: h\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\nGET /v1/sessions/other HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"),
            ("a folded header", "GET /v1/sessions/mine HTTP/1.1\\r\\nHost: h\\r\\n Connection: keep-alive\\r\\n\\r\\n"),
        })
        {
            var smuggled = await sandbox.RunAsync(RawRequest(port, raw));
            Assert.False(smuggled.Stdout.Contains("served", StringComparison.Ordinal), $"{what} got through: {smuggled.Stdout}");
        }

        // Two requests in one write, read until the server closes: the allowed one is served, the one behind it never reaches the server.
        var pipelined = await sandbox.RunAsync(RawRequest(port, "GET /v1/sessions/mine HTTP/1.1\\r\\nHost: h\\r\\n\\r\\nGET /v1/sessions/other HTTP/1.1\\r\\nHost: h\\r\\n\\r\\n"));
        Assert.Contains("served /v1/sessions/mine", pipelined.Stdout, StringComparison.Ordinal);
        Assert.Equal(["GET /v1/sessions/mine", "POST /v1/sessions/mine/events", "GET /v1/sessions/mine"], seen.ToArray());

        // A sandbox made from this one's snapshot keeps its list.
        var snapshot = await engine.Client.SnapshotAsync(sandbox.Id, SnapshotType.Filesystem);
        try
        {
            await using var copy = await engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
            Assert.DoesNotContain("served", (await copy.RunAsync($"curl -s {url}/v1/sessions/other")).Stdout, StringComparison.Ordinal);
        }
        finally
        {
            await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
        }
    }

    /// <summary>A script that sends <paramref name="raw"/> (Python bytes-literal escapes) in one write and prints all that comes back until the server closes.</summary>
    private static string RawRequest(int port, string raw) =>
        $"python3 -c \"import socket;s=socket.create_connection(('{Network.HostPortForwards.HostName}',{port}));s.sendall(b'{raw}');" +
        "print(b''.join(iter(lambda: s.recv(65536), b'')).decode())\"";
}
