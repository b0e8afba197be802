using System.Net;
using System.Net.Sockets;

namespace Hands.Engine.Network;

/// <summary>
/// A listening socket that hands every accepted connection to a handler (which owns it) until disposed. Shared by the
/// TCP relays and the host-port forwards.
/// </summary>
internal sealed class TcpAcceptLoop : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpAcceptLoop(IPEndPoint endpoint, Func<TcpClient, CancellationToken, Task> serve)
    {
        _listener = new TcpListener(endpoint);
        _listener.Start();
        Endpoint = (IPEndPoint)_listener.LocalEndpoint;
        _accepting = AcceptAsync(serve);
    }

    /// <summary>Where it listens (the port filled in when 0 was asked for).</summary>
    public IPEndPoint Endpoint { get; }

    private async Task AcceptAsync(Func<TcpClient, CancellationToken, Task> serve)
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token).ConfigureAwait(false);
                _ = serve(client, _stop.Token);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Closed.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        _listener.Stop();
        await _accepting.ConfigureAwait(false);
        _stop.Dispose();
    }
}
