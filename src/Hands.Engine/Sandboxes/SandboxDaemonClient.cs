using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Sandboxes;

/// <summary>The engine's own calls to a sandbox's daemon over its veth: readiness and starting the entrypoint.</summary>
internal static class SandboxDaemonClient
{
    public const int Port = 9501;

    private static readonly HttpClient Http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero, UseProxy = false })
    {
        Timeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>Waits until something accepts on <paramref name="address"/>:<paramref name="port"/> (polling every 2 ms).</summary>
    public static async Task<bool> WaitForPortAsync(IPAddress address, int port, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                using var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                attempt.CancelAfter(TimeSpan.FromMilliseconds(250));
                await socket.ConnectAsync(address, port, attempt.Token).ConfigureAwait(false);
                return true;
            }
            catch (Exception ex) when (ex is SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
            {
                await Task.Delay(2, cancellationToken).ConfigureAwait(false);
            }
        }

        return false;
    }

    /// <summary>Starts the create request's <c>entrypoint</c> as the named process <c>entrypoint</c>.</summary>
    public static async Task StartEntrypointAsync(IPAddress address, IReadOnlyList<string> entrypoint, CancellationToken cancellationToken)
    {
        var request = new StartProcessRequest { Command = entrypoint[0], Args = [.. entrypoint.Skip(1)], Name = "entrypoint" };
        using var response = await Http.PostAsJsonAsync($"http://{address}:{Port}/api/v1/processes", request, SandboxesJsonContext.Default.StartProcessRequest, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new EngineException(400, $"the entrypoint could not be started: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }
}
