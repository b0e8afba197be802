using System.Net;
using Hands.Engine.Network;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>
/// Refuses a request whose <c>Host</c> is not a name this engine serves, so a web page whose own name was rebound to
/// 127.0.0.1 (DNS rebinding) cannot drive the API or the ingress from a browser on this machine. Served names: loopback
/// addresses, <c>localhost</c> and any <c>*.localhost</c> or <c>*.local</c> name (the ingress's sandbox names), the
/// name sandboxes use for the host (<c>host.hands.internal</c>), and the hosts of the configured API and ingress URLs
/// with their subdomains. A server bound to every address (0.0.0.0 or [::]) was put on the network on purpose and
/// serves any name.
/// </summary>
internal sealed class HostHeaderFilter(params Uri[] configured)
{
    private readonly bool _any = configured.Any(u => IPAddress.TryParse(u.IdnHost.Trim('[', ']'), out var a) && (a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any)));

    private readonly string[] _names = [.. configured.Select(u => u.IdnHost.ToLowerInvariant()).Where(h => !IPAddress.TryParse(h, out _)).Append(HostPortForwards.HostName)];

    private readonly IPAddress[] _addresses = [.. configured.Select(u => IPAddress.TryParse(u.IdnHost, out var a) ? a : null).OfType<IPAddress>()];

    public bool Allows(string host)
    {
        if (_any)
        {
            return true;
        }

        host = host.TrimEnd('.').ToLowerInvariant();
        if (IPAddress.TryParse(host.Trim('[', ']'), out var address))
        {
            return IPAddress.IsLoopback(address) || _addresses.Contains(address);
        }

        return host is "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal) || host.EndsWith(".local", StringComparison.Ordinal)
            || _names.Any(n => host == n || host.EndsWith("." + n, StringComparison.Ordinal));
    }

    /// <summary>Middleware: 421 for a Host this engine does not serve.</summary>
    public async Task CheckAsync(HttpContext context, RequestDelegate next)
    {
        if (!Allows(context.Request.Host.Host))
        {
            context.Response.StatusCode = StatusCodes.Status421MisdirectedRequest;
            context.Response.ContentType = "text/plain";
            await context.Response.WriteAsync($"this engine does not serve the host name '{context.Request.Host.Host}'; use 127.0.0.1, localhost or a configured name\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        await next(context).ConfigureAwait(false);
    }
}
