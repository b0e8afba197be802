using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Ingress;

/// <summary>
/// Plain TCP relays for ports that do not speak HTTP (an engine extension: <c>POST /sandboxes/{id}/tcp-relays</c>):
/// a loopback listener per exposed port that wakes the sandbox on connect and pipes bytes both ways. An open
/// connection holds the idle timer like any proxied exchange. Raw TCP carries no key, so a relay is opened by an
/// authenticated API call and listens on loopback only; relays end with their sandbox or with the engine.
/// </summary>
internal sealed class TcpRelays(SandboxManager sandboxes, SandboxActivity activity, ILogger logger) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<(string Id, int Port), Network.TcpAcceptLoop> _relays = new();

    /// <summary>Opens (or returns) the relay for an exposed port; the answer is its loopback endpoint.</summary>
    public IPEndPoint Open(SandboxRecord record, int port)
    {
        if (!record.ExposedPorts.Contains(port))
        {
            throw new EngineException(400, $"port {port} of sandbox {record.Id} is not exposed; expose it first (PATCH exposed_ports)");
        }

        var relay = _relays.GetOrAdd((record.Id, port),
            key => new Network.TcpAcceptLoop(new IPEndPoint(IPAddress.Loopback, 0), (client, ct) => ServeAsync(key.Id, key.Port, client, ct)));
        return relay.Endpoint;
    }

    public IReadOnlyList<(int Port, IPEndPoint Endpoint)> For(string id) =>
        [.. _relays.Where(r => r.Key.Id == id).Select(r => (r.Key.Port, r.Value.Endpoint))];

    public async Task CloseAsync(string id)
    {
        foreach (var key in _relays.Keys.Where(k => k.Id == id).ToList())
        {
            if (_relays.TryRemove(key, out var relay))
            {
                await relay.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var relay in _relays.Values)
        {
            await relay.DisposeAsync().ConfigureAwait(false);
        }

        _relays.Clear();
    }

    private async Task ServeAsync(string id, int port, TcpClient client, CancellationToken cancellationToken)
    {
        using (client)
        {
            if (sandboxes.FindAlive(id) is not { } record)
            {
                await CloseAsync(id).ConfigureAwait(false);
                return;
            }

            if (!record.ExposedPorts.Contains(port))
            {
                return;
            }

            using var open = activity.Open(record.Id);
            try
            {
                var wasAsleep = record.Status != Hands.Sandboxes.Models.SandboxStatus.Running;
                record = await sandboxes.EnsureRunningAsync(record, cancellationToken).ConfigureAwait(false);
                var address = sandboxes.SlotOf(record).SandboxAddress;
                // Only after a wake: the probe is one empty connection, which a fragile server may not like.
                if (wasAsleep && !await SandboxDaemonClient.WaitForPortAsync(address, port, TimeSpan.FromSeconds(15), cancellationToken).ConfigureAwait(false))
                {
                    return;
                }

                using var upstream = new TcpClient();
                await upstream.ConnectAsync(address, port, cancellationToken).ConfigureAwait(false);
                await Network.TcpPipe.BothWaysAsync(client, upstream, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or IOException or EngineException or OperationCanceledException)
            {
                logger.LogDebug("relay {Id}:{Port} ended: {Error}", id, port, ex.Message);
            }

        }
    }
}
