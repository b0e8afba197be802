using System.Net;
using System.Net.Http;
using System.Net.Sockets;

namespace Hands.Protocol.Client;

/// <summary>
/// A <see cref="SocketsHttpHandler.ConnectCallback"/> that sends <c>*.localhost</c> names to loopback (RFC 6761, as
/// browsers and curl do; glibc's resolver does not). The local engine's ingress serves sandboxes' public ports as
/// <c>{port}-{sandbox}.localhost</c>, so with this a local webhook sender or health check reaches a receiver that runs
/// in a local sandbox by its public-style URL. Every other name connects as usual.
/// </summary>
public static class LocalhostNames
{
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(context);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (context.DnsEndPoint.Host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase))
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            }

            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>An <see cref="HttpClient"/> using <see cref="ConnectAsync"/>.</summary>
    public static HttpClient CreateHttpClient(TimeSpan timeout) =>
        new(new SocketsHttpHandler { ConnectCallback = ConnectAsync, ConnectTimeout = TimeSpan.FromSeconds(5) }) { Timeout = timeout };
}
