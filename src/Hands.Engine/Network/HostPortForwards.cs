using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network;

/// <summary>
/// Lets sandboxes reach chosen services on the host's loopback (an engine extension; Docker's
/// <c>host.docker.internal</c> in spirit). For every sandbox the engine listens on its gateway address
/// (<c>10.200.N.1</c>) at each configured port and pipes the bytes to <c>127.0.0.1</c> at the same port; inside, the
/// name <see cref="HostName"/> resolves to that gateway. Nothing else on the host is reachable, the host's own
/// networking is not changed, and the listeners live exactly as long as the sandbox's network. This class serves the
/// forwards; where it runs (the engine's process or a forwarder of its own) is <see cref="IHostPortForwarding"/>'s choice.
/// </summary>
/// <param name="ports">The host ports forwarded.</param>
/// <param name="routesOf">The HTTP allow-list of a sandbox (by slot) for a port, or null to pipe bytes unfiltered.</param>
/// <param name="holdIdle">
/// Holds the idle clock of a sandbox (by slot) while one of its connections through a forward is open; null when the
/// slot has no live sandbox. A session's worker reaches the control plane this way, its event stream always open: so
/// a sandbox never idles out (and is suspended) under an attached worker, however long its calls run without inbound
/// traffic; once the worker exits, the idle timeout runs.
/// </param>
/// <param name="logger">Where ended forwards are noted.</param>
internal sealed class HostPortForwards(IReadOnlyList<int> ports, Func<int, int, IReadOnlyCollection<string>?> routesOf, Func<int, IDisposable?> holdIdle,
    ILogger logger) : IHostPortForwarding
{
    /// <summary>The name a sandbox uses for the host (written to its <c>/etc/hosts</c>).</summary>
    public const string HostName = "host.hands.internal";

    private readonly ConcurrentDictionary<int, List<TcpAcceptLoop>> _bySlot = new();

    public IReadOnlyList<int> Ports => ports;

    /// <summary>The slots whose listeners are open.</summary>
    public IReadOnlyCollection<int> OpenSlots => [.. _bySlot.Keys];

    public Task OpenAsync(NetworkSlot slot, CancellationToken cancellationToken)
    {
        Open(slot);
        return Task.CompletedTask;
    }

    public Task OpenAllAsync(IReadOnlyCollection<NetworkSlot> slots, CancellationToken cancellationToken)
    {
        foreach (var slot in slots)
        {
            try
            {
                Open(slot);
            }
            catch (System.Net.Sockets.SocketException ex)
            {
                logger.LogError("network slot {Slot}: host-port forwards could not listen: {Error}", slot.Index, ex.Message);
            }
        }

        return Task.CompletedTask;
    }

    // Routes are read at accept time (routesOf), so a change applies to the next connection with nothing to do here.
    public Task RoutesChangedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<IReadOnlyCollection<int>> BusySlotsAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyCollection<int>>([]);

    public async Task StopAsync(int sandboxesAlive) => await DisposeAsync().ConfigureAwait(false);

    /// <summary>Starts the slot's listeners (idempotent); the gateway address must already be configured.</summary>
    public void Open(NetworkSlot slot)
    {
        if (ports.Count == 0)
        {
            return;
        }

        _bySlot.GetOrAdd(slot.Index, _ => Listen(slot));
    }

    private List<TcpAcceptLoop> Listen(NetworkSlot slot)
    {
        var listeners = new List<TcpAcceptLoop>();
        try
        {
            foreach (var port in ports)
            {
                listeners.Add(new TcpAcceptLoop(new IPEndPoint(slot.HostAddress, port), (client, ct) => ServeAsync(client, slot.Index, port, ct)));
            }

            return listeners;
        }
        catch
        {
            // A port that cannot be bound fails the whole slot; the ones already bound are not left listening.
            foreach (var listener in listeners)
            {
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }

            throw;
        }
    }

    public async Task CloseAsync(NetworkSlot slot)
    {
        if (_bySlot.TryRemove(slot.Index, out var forwards))
        {
            foreach (var forward in forwards)
            {
                await forward.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var index in _bySlot.Keys.ToList())
        {
            await CloseAsync(new NetworkSlot(index)).ConfigureAwait(false);
        }
    }

    /// <summary>Pipes one connection from a sandbox to the same port on the host's loopback (through its route gate, if it has one).</summary>
    private async Task ServeAsync(TcpClient client, int slotIndex, int hostPort, CancellationToken cancellationToken)
    {
        using (client)
        using (holdIdle(slotIndex))
        {
            try
            {
                // Read at accept time, so a PATCH of the list applies to the next connection.
                if (routesOf(slotIndex, hostPort) is { } routes)
                {
                    await HttpRouteGate.ServeAsync(client.GetStream(), routes, async ct =>
                    {
                        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                        await socket.ConnectAsync(IPAddress.Loopback, hostPort, ct).ConfigureAwait(false);
                        return new NetworkStream(socket, ownsSocket: true);
                    }, cancellationToken).ConfigureAwait(false);
                    return;
                }

                using var upstream = new TcpClient();
                await upstream.ConnectAsync(IPAddress.Loopback, hostPort, cancellationToken).ConfigureAwait(false);
                await TcpPipe.BothWaysAsync(client, upstream, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
            {
                logger.LogDebug("host forward to port {Port} ended: {Error}", hostPort, ex.Message);
            }
        }
    }
}
