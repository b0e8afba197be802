using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// Network telemetry end to end: a real sandbox connects to a TCP server the test runs on the host (reached through the
/// engine's host-port forward on the sandbox's gateway, 10.200.N.1) and is refused an address its policy denies; the
/// events, destinations and status read through <see cref="TensorlakeClient"/> show both, with the policy action and
/// the kernel's byte counts, and still do after the sandbox is deleted. No traffic leaves loopback or the sandbox's
/// namespace: the denied address is refused inside it.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class NetworkTelemetryTests(EngineFixture engine)
{
    private const string Denied = "10.200.255.253";
    private const int Sent = 1000;
    private const int Answered = 10;

    [Fact]
    public async Task An_allowed_and_a_denied_connection_are_recorded_with_action_and_bytes_and_outlive_the_sandbox()
    {
        var port = engine.ControlPlanePort;
        using var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var served = ServeOnceAsync(listener, stop.Token);

        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Network = new NetworkPolicy { DenyOut = [Denied] } });
        var script = $"""
            python3 -c "
            import socket
            gateway = socket.gethostbyname('{Network.HostPortForwards.HostName}')
            s = socket.create_connection((gateway, {port}), timeout=10)
            s.sendall(b'x' * {Sent})
            got = b''
            while len(got) < {Answered}:
                chunk = s.recv(100)
                if not chunk: break
                got += chunk
            s.close()
            try:
                socket.create_connection(('{Denied}', 9), timeout=5)
                print('denied-reached')
            except OSError as e:
                print('denied-refused')
            print('gateway', gateway, 'got', len(got))
            "
            """;
        var run = await sandbox.RunAsync(script);
        Assert.Contains("denied-refused", run.Stdout, StringComparison.Ordinal);
        Assert.Equal(Sent, await served);
        var gateway = run.Stdout.Split('\n').Single(l => l.StartsWith("gateway ", StringComparison.Ordinal)).Split(' ')[1];
        Assert.EndsWith($"got {Answered}", run.Stdout.Trim(), StringComparison.Ordinal);

        // Pages of 1 make the pager follow cursors.
        var before = await AllEventsAsync(sandbox.Id);
        AssertAllowedConnection(before, gateway, port);
        AssertDeniedAttempt(before);

        var destinations = await engine.Client.GetNetworkDestinationsAsync(sandbox.Id);
        var destination = Assert.Single(destinations.Destinations, d => d.DestinationIp == gateway && d.DestinationPort == port);
        Assert.Equal("tcp", destination.Transport);
        Assert.True(destination.ObservedConnections >= 1);
        Assert.True(destination.OriginalBytes >= Sent && destination.ReplyBytes >= Answered, $"destination bytes {destination.OriginalBytes}/{destination.ReplyBytes}");
        var status = await engine.Client.GetNetworkStatusAsync(sandbox.Id);
        Assert.Equal(("recent", sandbox.Id), (status.State, status.AllocationId));
        Assert.Contains(NetworkObservationSources.Conntrack, status.Coverage);

        // The server's own checks, through plain HTTP: the error shape of every other route (plain text, the status).
        using (var http = new HttpClient())
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", EngineFixture.ApiKey);
            var root = $"{engine.Engine.ApiAddress.ToString().TrimEnd('/')}/v1/namespaces/default/sandboxes";
            foreach (var (path, expected, text) in new[]
            {
                ($"{sandbox.Id}/network/events?limit=501", HttpStatusCode.BadRequest, "limit must be a whole number from 1 to 500"),
                ($"{sandbox.Id}/network/events?from_ms=20&to_ms=10", HttpStatusCode.BadRequest, "from_ms (20) is after to_ms (10)"),
                ($"{sandbox.Id}/network/events?cursor=garbage", HttpStatusCode.BadRequest, "cursor is not one this server issued"),
                ($"{sandbox.Id}/network/destinations?cursor=x", HttpStatusCode.BadRequest, "cursor applies only to network events"),
                ("no-such-sandbox/network/status", HttpStatusCode.NotFound, "sandbox 'no-such-sandbox' not found"),
            })
            {
                using var response = await http.GetAsync(new Uri($"{root}/{path}"));
                Assert.Equal(expected, response.StatusCode);
                Assert.StartsWith(text, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
        }

        await engine.Client.DeleteAsync(sandbox.Id);
        var after = await AllEventsAsync(sandbox.Id);
        // Nothing recorded before is lost; the connections still tracked end with the namespace.
        Assert.Empty(before.Select(e => e.Sequence).Except(after.Select(e => e.Sequence)));
        AssertAllowedConnection(after, gateway, port);
        AssertDeniedAttempt(after);
        Assert.Contains(after, e => e.EventKind == NetworkEventKinds.ConnectionDestroy && e.DestinationIp == gateway);
        Assert.Contains((await engine.Client.GetNetworkDestinationsAsync(sandbox.Id)).Destinations, d => d.DestinationIp == gateway && d.DestinationPort == port);
        var ended = await engine.Client.GetNetworkStatusAsync(sandbox.Id);
        Assert.Contains(ended.Limitations, l => l.Contains("terminated", StringComparison.Ordinal));

        await stop.CancelAsync();
        listener.Stop();
    }

    /// <summary>
    /// The telemetry is the engine's durable state: after a restart the events are all there, none repeated (the refusal
    /// counters already counted are stored), and a new refusal counts only its own packet, in a new capture session.
    /// </summary>
    [Fact]
    public async Task A_restarted_engine_keeps_the_events_and_repeats_none()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-net-restart-" + Guid.NewGuid().ToString("N")[..8]);
        var engineNow = await EngineFixture.StartEngineAsync(data);
        var client = EngineFixture.NewClient(engineNow);
        string? sandbox = null;
        try
        {
            sandbox = (await client.CreateAsync(new CreateSandboxRequest { Image = "host", Network = new NetworkPolicy { DenyOut = [Denied] } })).CanonicalId;
            await RefuseOnceAsync(client, sandbox);
            var before = (await client.GetNetworkEventsAsync(sandbox, new NetworkQuery { Limit = 500 })).Events;
            var first = Assert.Single(before, e => e.EventKind == NetworkEventKinds.Policy && e.DestinationIp == Denied);

            client.Dispose();
            await engineNow.DisposeAsync();
            engineNow = await EngineFixture.StartEngineAsync(data);
            client = EngineFixture.NewClient(engineNow);

            var after = (await client.GetNetworkEventsAsync(sandbox, new NetworkQuery { Limit = 500 })).Events;
            Assert.Equal(before.Select(e => e.Sequence), after.Select(e => e.Sequence));
            await RefuseOnceAsync(client, sandbox);
            var refusals = (await client.GetNetworkEventsAsync(sandbox, new NetworkQuery { Limit = 500 })).Events
                .Where(e => e.EventKind == NetworkEventKinds.Policy && e.DestinationIp == Denied).ToList();
            Assert.Equal(2, refusals.Count);
            Assert.Equal(first.OriginalPackets, refusals[1].OriginalPackets);
            Assert.NotEqual(first.CaptureSession, refusals[1].CaptureSession);
        }
        finally
        {
            if (sandbox is not null)
            {
                await client.DeleteAsync(sandbox);
            }

            client.Dispose();
            await engineNow.DisposeAsync();
            Leftovers.AssertNone(data);
            Directory.Delete(data, recursive: true);
        }
    }

    private static async Task RefuseOnceAsync(TensorlakeClient client, string sandbox)
    {
        var proxy = client.Proxy(await client.GetAsync(sandbox));
        var run = await proxy.RunAsync(new RunProcessRequest
        {
            Command = "python3",
            Args = ["-c", $"import socket\ntry:\n    socket.create_connection(('{Denied}', 9), timeout=5)\n    print('reached')\nexcept OSError:\n    print('refused')"],
        });
        Assert.Equal("refused", run.Stdout.Trim());
    }

    private async Task<List<NetworkEvent>> AllEventsAsync(string sandboxId)
    {
        var events = new List<NetworkEvent>();
        var pages = 0;
        await foreach (var page in engine.Client.GetNetworkEventsPageable(sandboxId, new NetworkQuery { Limit = 1 }).AsPages())
        {
            Assert.True(page.Events.Count <= 1);
            events.AddRange(page.Events);
            pages++;
        }

        Assert.True(pages > 1, "the events fit one page of 1: the pager followed no cursor");
        Assert.Equal(events.Select(e => e.Sequence).Order(), events.Select(e => e.Sequence));
        return events;
    }

    /// <summary>The kernel counts IP and TCP headers (20 + 20 to 40 bytes a packet) on top of the payload.</summary>
    private static void AssertAllowedConnection(List<NetworkEvent> events, string gateway, int port)
    {
        var connection = events.Where(e => e.ObservationSource == NetworkObservationSources.Conntrack && e.DestinationIp == gateway && e.DestinationPort == port && e.Transport == "tcp").ToList();
        Assert.Contains(connection, e => e.EventKind == NetworkEventKinds.ConnectionNew);
        Assert.All(connection, e => Assert.Equal(NetworkPolicyActions.Allow, e.PolicyAction));
        var latest = connection[^1];
        Assert.True(latest.OriginalBytes >= Sent + (40 * latest.OriginalPackets) && latest.OriginalBytes <= Sent + (60 * latest.OriginalPackets),
            $"sent {latest.OriginalBytes} bytes in {latest.OriginalPackets} packets for a {Sent}-byte payload");
        Assert.True(latest.ReplyBytes >= Answered + (40 * latest.ReplyPackets) && latest.ReplyBytes <= Answered + (60 * latest.ReplyPackets),
            $"received {latest.ReplyBytes} bytes in {latest.ReplyPackets} packets for a {Answered}-byte payload");
        Assert.NotNull(latest.KernelStartedAtNs);
        Assert.Equal(latest.SandboxId, latest.AllocationId);
    }

    private static void AssertDeniedAttempt(List<NetworkEvent> events)
    {
        var refusal = Assert.Single(events, e => e.EventKind == NetworkEventKinds.Policy && e.DestinationIp == Denied);
        Assert.Equal((NetworkPolicyActions.Deny, "deny_out", NetworkObservationSources.Policy), (refusal.PolicyAction, refusal.Detail, refusal.ObservationSource));
        Assert.True(refusal.OriginalPackets >= 1 && refusal.OriginalBytes >= 40 * refusal.OriginalPackets, $"refused {refusal.OriginalPackets} packets, {refusal.OriginalBytes} bytes");
    }

    /// <summary>Accepts one connection, reads the payload to its end, answers <see cref="Answered"/> bytes; returns what it read.</summary>
    private static async Task<int> ServeOnceAsync(TcpListener listener, CancellationToken cancellationToken)
    {
        using var client = await listener.AcceptTcpClientAsync(cancellationToken);
        var stream = client.GetStream();
        var buffer = new byte[4096];
        var total = 0;
        while (total < Sent)
        {
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        await stream.WriteAsync(new byte[Answered], cancellationToken);
        await stream.FlushAsync(cancellationToken);
        return total;
    }
}
