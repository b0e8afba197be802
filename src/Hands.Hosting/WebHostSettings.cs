using Microsoft.Extensions.Logging;

namespace Hands.Hosting;

/// <summary>How one Hands server listens: its address, its request-body cap and its logging.</summary>
/// <param name="Url">The address Kestrel binds, e.g. <c>http://127.0.0.1:0</c> (port 0: any free port).</param>
/// <param name="MaxRequestBodySize">The largest request body in bytes; null for none (uploads, files, proxied traffic).</param>
public sealed record WebHostSettings(string Url, long? MaxRequestBodySize)
{
    /// <summary>Adds the server's log providers; none when null, so a library host logs nothing unasked.</summary>
    public Action<ILoggingBuilder>? Logging { get; init; }

    /// <summary>Whether Kestrel sends its <c>Server</c> header.</summary>
    public bool ServerHeader { get; init; } = true;

    /// <summary>
    /// Whether the host watches its configuration files. Off for a process CRIU checkpoints: it cannot dump inotify
    /// handles on overlayfs.
    /// </summary>
    public bool WatchConfiguration { get; init; } = true;
}
