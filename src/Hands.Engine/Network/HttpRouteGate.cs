using System.Globalization;
using System.Text;

namespace Hands.Engine.Network;

/// <summary>
/// An HTTP allow-list at a host-port forward (engine extension <c>host_port_routes</c>): a connection from the
/// sandbox carries exactly one request, and only a request whose method and path are on the list reaches the host.
/// <para>
/// The gate is a one-request proxy, not a filter on a byte pipe, so that nothing depends on the gate and the server
/// splitting the bytes the same way: it reads the head, refuses (403) anything that is not plain HTTP/1.1 — a bare LF
/// or CR, NUL, folded or malformed header lines, <c>Transfer-Encoding</c>, <c>Upgrade</c>, a path with <c>%</c>,
/// <c>..</c>, <c>//</c> or a backslash — and anything not listed; then it sends the server that head (with
/// <c>Connection: close</c>) and exactly <c>Content-Length</c> bytes of body, relays the answer, and drops whatever
/// else the client sends. What it is for: a session's sandbox that reaches the Managed Agents API only for its own
/// session's routes.
/// </para>
/// </summary>
internal static class HttpRouteGate
{
    /// <summary>Longest request head taken; a longer one is refused.</summary>
    public const int MaxHeadBytes = 16 * 1024;

    /// <summary>Largest body relayed (tool results are posted as events).</summary>
    public const long MaxBodyBytes = 64L << 20;

    /// <summary>How long the head may take to arrive: a client that sends nothing holds no server connection for long.</summary>
    public static readonly TimeSpan HeadTimeout = TimeSpan.FromSeconds(10);

    private static readonly string[] Methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"];

    /// <summary>True for a well-formed allow-list entry: <c>METHOD /path</c>.</summary>
    public static bool IsValidRoute(string route) =>
        route.Split(' ') is [var method, var path] && Methods.Contains(method) && IsPlainPath(path);

    /// <summary>
    /// Serves one connection: reads and checks the request head, then (when allowed) connects with
    /// <paramref name="connectUpstream"/>, relays the request and its body, and the answer back.
    /// </summary>
    public static async Task ServeAsync(Stream client, IReadOnlyCollection<string> routes, Func<CancellationToken, Task<Stream>> connectUpstream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxHeadBytes];
        int filled, headEnd;
        using (var headTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            headTimeout.CancelAfter(HeadTimeout);
            (filled, headEnd) = await ReadHeadAsync(client, buffer, headTimeout.Token).ConfigureAwait(false);
        }

        if (headEnd < 0)
        {
            await RefuseAsync(client, filled == buffer.Length ? "the request head is too long" : "the request head did not arrive", cancellationToken).ConfigureAwait(false);
            return;
        }

        var request = Check(Encoding.Latin1.GetString(buffer, 0, headEnd), routes);
        if (request.Refusal is { } why)
        {
            await RefuseAsync(client, why, cancellationToken).ConfigureAwait(false);
            return;
        }

        await using var upstream = await connectUpstream(cancellationToken).ConfigureAwait(false);
        if (request.ExpectsContinue)
        {
            // The Expect header is not passed on; the client is told to go on here, where its body is read.
            await client.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        }

        await upstream.WriteAsync(Encoding.Latin1.GetBytes(request.Head!), cancellationToken).ConfigureAwait(false);
        var inBuffer = Math.Min(filled - headEnd - 4, request.ContentLength);
        await upstream.WriteAsync(buffer.AsMemory(headEnd + 4, (int)inBuffer), cancellationToken).ConfigureAwait(false);
        await CopyExactlyAsync(client, upstream, request.ContentLength - inBuffer, cancellationToken).ConfigureAwait(false);

        // The answer goes back until the server closes (Connection: close); a client that hangs up ends it too. Anything
        // more the client sends is read and dropped.
        using var done = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var answer = upstream.CopyToAsync(client, done.Token);
        var rest = DrainAsync(client, done.Token);
        await Task.WhenAny(answer, rest).ConfigureAwait(false);
        await done.CancelAsync().ConfigureAwait(false);
        foreach (var side in new[] { answer, rest })
        {
            try
            {
                await side.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException)
            {
                // One side ended the exchange; the other was cut short on purpose.
            }
        }
    }

    /// <summary>The request head, rewritten, or why it is refused.</summary>
    private sealed record CheckedHead(string? Refusal, string? Head = null, long ContentLength = 0, bool ExpectsContinue = false);

    private static CheckedHead Check(string head, IReadOnlyCollection<string> routes)
    {
        if (head.Contains('\0', StringComparison.Ordinal) || head.Replace("\r\n", "", StringComparison.Ordinal).AsSpan().IndexOfAny('\r', '\n') >= 0)
        {
            return new CheckedHead("a request head may end its lines only with CRLF");
        }

        var lines = head.Split("\r\n");
        if (lines[0].Split(' ') is not [var method, var target, "HTTP/1.1" or "HTTP/1.0"])
        {
            return new CheckedHead("not a plain HTTP/1.x request line");
        }

        var path = target.Split('?')[0];
        if (!IsPlainPath(path) || !routes.Contains($"{method} {path}"))
        {
            return new CheckedHead($"{method} {path} is not on this sandbox's allow-list for the host");
        }

        var rewritten = new StringBuilder(lines[0]).Append("\r\n");
        long contentLength = 0;
        var expectsContinue = false;
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || line[0] is ' ' or '\t' || line.AsSpan(0, colon).IndexOfAny(' ', '\t') >= 0)
            {
                return new CheckedHead("a malformed or folded header line");
            }

            var name = line[..colon];
            var value = line[(colon + 1)..].Trim();
            switch (name.ToLowerInvariant())
            {
                case "transfer-encoding" or "upgrade" or "http2-settings" or "te" or "trailer":
                    return new CheckedHead($"the {name} header is not allowed through this gate");
                case "content-length":
                    if (contentLength != 0 || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out contentLength) || contentLength > MaxBodyBytes)
                    {
                        return new CheckedHead("Content-Length must be one plain number up to 64 MiB");
                    }

                    break;
                case "expect":
                    expectsContinue = value.Equals("100-continue", StringComparison.OrdinalIgnoreCase);
                    continue;
                case "connection" or "keep-alive" or "proxy-connection":
                    continue;
            }

            rewritten.Append(line).Append("\r\n");
        }

        rewritten.Append("Connection: close\r\n\r\n");
        return new CheckedHead(null, rewritten.ToString(), contentLength, expectsContinue);
    }

    private static async Task<(int Filled, int HeadEnd)> ReadHeadAsync(Stream client, byte[] buffer, CancellationToken cancellationToken)
    {
        var filled = 0;
        try
        {
            while (filled < buffer.Length)
            {
                var read = await client.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                filled += read;
                var end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
                if (end >= 0)
                {
                    return (filled, end);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Too slow: refused below.
        }

        return (filled, -1);
    }

    private static async Task CopyExactlyAsync(Stream from, Stream to, long count, CancellationToken cancellationToken)
    {
        var chunk = new byte[64 * 1024];
        while (count > 0)
        {
            var read = await from.ReadAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, count)), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                throw new IOException("the client hung up before its body was complete");
            }

            await to.WriteAsync(chunk.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
            count -= read;
        }
    }

    private static async Task DrainAsync(Stream client, CancellationToken cancellationToken)
    {
        var sink = new byte[4096];
        while (await client.ReadAsync(sink, cancellationToken).ConfigureAwait(false) > 0)
        {
        }
    }

    private static bool IsPlainPath(string path) =>
        path.StartsWith('/') && !path.Contains('%', StringComparison.Ordinal) && !path.Contains('\\', StringComparison.Ordinal)
        && !path.Contains("//", StringComparison.Ordinal) && !path.Split('/').Any(segment => segment is "." or "..");

    private static async Task RefuseAsync(Stream client, string why, CancellationToken cancellationToken)
    {
        var message = "hands engine: " + why.Replace("\"", "'", StringComparison.Ordinal);
        var body = "{\"type\":\"error\",\"error\":{\"type\":\"permission_error\",\"message\":\"" + message + "\"}}";
        var response = $"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\nConnection: close\r\n\r\n{body}";
        try
        {
            await client.WriteAsync(Encoding.UTF8.GetBytes(response), cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The client is gone already.
        }
    }
}
