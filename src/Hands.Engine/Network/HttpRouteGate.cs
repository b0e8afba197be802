using System.Text;

namespace Hands.Engine.Network;

/// <summary>
/// An HTTP allow-list at a host-port forward (engine extension <c>host_port_routes</c>): a connection from the
/// sandbox carries exactly one request, and only a request whose method and path are on the list reaches the host.
/// The gate reads the request head, refuses with 403 anything not listed (and any path with <c>%</c>, <c>..</c>,
/// <c>//</c> or a backslash, which a server could decode into another route), forces <c>Connection: close</c> so the
/// server answers this one request and no pipelined one behind it, then hands the connection on for piping.
/// What it is for: a session's sandbox that reaches the Managed Agents API only for its own session's routes.
/// </summary>
internal static class HttpRouteGate
{
    /// <summary>Longest request head taken; a longer one is refused.</summary>
    public const int MaxHeadBytes = 16 * 1024;

    private static readonly string[] Methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

    /// <summary>True for a well-formed allow-list entry: <c>METHOD /path</c>.</summary>
    public static bool IsValidRoute(string route) =>
        route.Split(' ') is [var method, var path] && Methods.Contains(method) && IsPlainPath(path);

    /// <summary>
    /// Reads the request head from <paramref name="client"/>; when it is allowed, writes it (with <c>Connection:
    /// close</c>) and whatever of the body came with it to <paramref name="upstream"/> and returns true; otherwise
    /// answers 403 itself and returns false.
    /// </summary>
    public static async Task<bool> AdmitAsync(Stream client, Stream upstream, IReadOnlyCollection<string> routes, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxHeadBytes];
        var filled = 0;
        var headEnd = -1;
        while (headEnd < 0)
        {
            if (filled == buffer.Length)
            {
                await RefuseAsync(client, "the request head is too long", cancellationToken).ConfigureAwait(false);
                return false;
            }

            var read = await client.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return false;
            }

            filled += read;
            headEnd = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
        }

        var head = Encoding.Latin1.GetString(buffer, 0, headEnd);
        var lines = head.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine is not [var method, var target, var version] || !version.StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            await RefuseAsync(client, "not an HTTP/1.x request", cancellationToken).ConfigureAwait(false);
            return false;
        }

        var path = target.Split('?')[0];
        if (!IsPlainPath(path) || !routes.Contains($"{method} {path}"))
        {
            await RefuseAsync(client, $"{method} {path} is not on this sandbox's allow-list for the host", cancellationToken).ConfigureAwait(false);
            return false;
        }

        var rewritten = new StringBuilder(lines[0]).Append("\r\n");
        foreach (var line in lines.Skip(1).Where(l => !l.StartsWith("Connection:", StringComparison.OrdinalIgnoreCase)))
        {
            rewritten.Append(line).Append("\r\n");
        }

        rewritten.Append("Connection: close\r\n\r\n");
        await upstream.WriteAsync(Encoding.Latin1.GetBytes(rewritten.ToString()), cancellationToken).ConfigureAwait(false);
        await upstream.WriteAsync(buffer.AsMemory(headEnd + 4, filled - headEnd - 4), cancellationToken).ConfigureAwait(false);
        return true;
    }

    private static bool IsPlainPath(string path) =>
        path.StartsWith('/') && !path.Contains('%', StringComparison.Ordinal) && !path.Contains('\\', StringComparison.Ordinal)
        && !path.Contains("//", StringComparison.Ordinal) && !path.Split('/').Any(segment => segment is "." or "..");

    private static async Task RefuseAsync(Stream client, string why, CancellationToken cancellationToken)
    {
        var message = "hands engine: " + why.Replace("\"", "'", StringComparison.Ordinal);
        var body = "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\",\"message\":\"" + message + "\"}}";
        var response = $"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        await client.WriteAsync(Encoding.UTF8.GetBytes(response), cancellationToken).ConfigureAwait(false);
    }
}
