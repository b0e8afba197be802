using System.Net.Sockets;

namespace Hands.Engine.Network;

/// <summary>Pipes two connected sockets into each other until both directions end.</summary>
internal static class TcpPipe
{
    public static async Task BothWaysAsync(TcpClient a, TcpClient b, CancellationToken cancellationToken)
    {
        // Both streams first: a direction that ends at once (the client already sent and half-closed) shuts its
        // socket down, after which GetStream refuses.
        var (aStream, bStream) = (a.GetStream(), b.GetStream());
        await Task.WhenAll(Pump(aStream, bStream, b.Client, cancellationToken), Pump(bStream, aStream, a.Client, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Copies one direction, then half-closes the other side so the peer sees the end of the stream.</summary>
    private static async Task Pump(Stream from, Stream to, Socket toSocket, CancellationToken cancellationToken)
    {
        try
        {
            await from.CopyToAsync(to, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            try
            {
                toSocket.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // Already gone.
            }
            catch (ObjectDisposedException)
            {
                // Already gone.
            }
        }
    }
}
