using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// The engine's own calls to a sandbox's daemon over its veth (readiness, starting the entrypoint), and the daemon's
/// access token: 32 random bytes per sandbox, written into the new root just before the daemon starts, read and deleted
/// by it before it listens, and otherwise kept only in the engine's root-only store.
/// </summary>
internal static class SandboxDaemonClient
{
    public const int Port = 9501;

    /// <summary>Where the daemon finds its token at boot (it deletes the file before anything else runs).</summary>
    public const string TokenFileInSandbox = "/run/hands-sandboxd.token";

    public static string NewToken() => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));

    /// <summary>
    /// Writes the token file into a sandbox's root before it boots. The root may come from a snapshot its own code
    /// made, so nothing on the way is trusted: a <c>/run</c> that is a link (to a host path, through the overlay) or not
    /// a directory is removed and made again, any entry at the token's name is unlinked, and the file is created with
    /// O_EXCL, which refuses to follow a link planted in between.
    /// </summary>
    public static string WriteTokenFile(string rootFs, string token)
    {
        var run = Path.Combine(rootFs, "run");
        var runInfo = new FileInfo(run);
        if (runInfo.LinkTarget is not null || (runInfo.Exists && !runInfo.Attributes.HasFlag(FileAttributes.Directory)))
        {
            File.Delete(run);
        }

        Directory.CreateDirectory(run);
        var path = Path.Combine(run, Path.GetFileName(TokenFileInSandbox));
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null)
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            File.Delete(path);
        }

        using var file = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        file.Write(System.Text.Encoding.ASCII.GetBytes(token));
        return path;
    }

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

    /// <summary>
    /// Asks the daemon to drop what it no longer references (credentials given to processes it started) before its
    /// memory is dumped; best effort: a daemon that does not answer is dumped as it is.
    /// </summary>
    public static async Task ScrubAsync(IPAddress address, string token, CancellationToken cancellationToken)
    {
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{address}:{Port}/api/v1/hands/scrub");
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var response = await Http.SendAsync(request, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            // Dumped as it is.
        }
    }

    /// <summary>Starts the create request's <c>entrypoint</c> as the named process <c>entrypoint</c>.</summary>
    public static async Task StartEntrypointAsync(IPAddress address, string token, IReadOnlyList<string> entrypoint, CancellationToken cancellationToken)
    {
        var body = new StartProcessRequest { Command = entrypoint[0], Args = [.. entrypoint.Skip(1)], Name = "entrypoint" };
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://{address}:{Port}/api/v1/processes")
        {
            Content = JsonContent.Create(body, SandboxesJsonContext.Default.StartProcessRequest),
        };
        request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        using var response = await Http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            throw new EngineException(400, $"the entrypoint could not be started: {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}");
        }
    }
}
