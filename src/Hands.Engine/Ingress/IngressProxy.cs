using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Hands.Engine.Api;
using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Hands.Engine.Ingress;

/// <summary>
/// The ingress: forwards HTTP (and WebSocket upgrades) to a sandbox's API (port 9501, always authenticated) or to an
/// exposed user port (authenticated unless the sandbox allows unauthenticated access). A suspended sandbox is woken by
/// the request, which is held until the port answers. Every forwarded exchange resets the sandbox's idle clock and an
/// open one holds it. The engine's key is never passed on into the sandbox.
/// </summary>
internal sealed class IngressProxy(SandboxManager sandboxes, SandboxActivity activity, ApiKeyCheck auth, IHttpForwarder forwarder, ILogger logger)
{
    /// <summary>How long a woken sandbox's port has to answer before the request gets 503.</summary>
    private static readonly TimeSpan WakeHold = TimeSpan.FromSeconds(15);

    private readonly HttpMessageInvoker _client = new(new SocketsHttpHandler
    {
        UseProxy = false,
        AllowAutoRedirect = false,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        EnableMultipleHttp2Connections = true,
        ConnectTimeout = TimeSpan.FromSeconds(10),
        PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),
        ActivityHeadersPropagator = null,
    });

    private readonly ForwarderRequestConfig _config = new() { ActivityTimeout = TimeSpan.FromMinutes(10) };

    public async Task HandleAsync(HttpContext ctx)
    {
        using var span = IngressSpan.Start(ctx);
        try
        {
            await ProxyAsync(ctx, span).ConfigureAwait(false);
        }
        finally
        {
            IngressSpan.Finish(span, ctx.Response);
        }
    }

    private async Task ProxyAsync(HttpContext ctx, Activity? span)
    {
        var target = IngressTarget.Parse(ctx.Request.Headers["X-Tensorlake-Sandbox-Id"], ctx.Request.Headers["X-Tensorlake-Sandbox-Port"], ctx.Request.Host.Value ?? "");
        if (target is not { } t)
        {
            await Error(ctx, 400, "MISSING_SANDBOX_ID", "say which sandbox: 'Host: {id}.local' (API), '{port}-{id}.localhost' (a port), or X-Tensorlake-Sandbox-Id").ConfigureAwait(false);
            return;
        }

        var (record, port) = Find(t);
        if (record is null)
        {
            await Error(ctx, 404, "SANDBOX_NOT_FOUND", $"no sandbox '{t.Sandbox}'").ConfigureAwait(false);
            return;
        }

        var caller = auth.Authenticate(ctx.Request);
        var authorized = caller is not null && (caller.Scope is not { } scope || ForkScope.MayReach(record, scope));
        if (port == IngressTarget.ManagementPort ? !authorized : !authorized && !record.AllowUnauthenticatedAccess)
        {
            await Error(ctx, 401, "UNAUTHORIZED", "this port needs the engine's API key: send 'Authorization: Bearer <key>'").ConfigureAwait(false);
            return;
        }

        if (port != IngressTarget.ManagementPort && !record.ExposedPorts.Contains(port))
        {
            await Error(ctx, 403, "PORT_NOT_EXPOSED", $"port {port} of sandbox {record.Id} is not exposed; add it with PATCH {{\"exposed_ports\": [...]}} (hands sandbox expose {record.Id} {port})").ConfigureAwait(false);
            return;
        }

        IngressSpan.Target(span, record.Id, port, ctx.Request.Path.Value ?? "/");
        using var open = activity.Open(record.Id);
        var wasAsleep = record.Status != SandboxStatus.Running;
        if (wasAsleep)
        {
            IngressSpan.Woke(span, record.SuspendTier);
        }

        try
        {
            record = await sandboxes.EnsureRunningAsync(record, ctx.RequestAborted).ConfigureAwait(false);
        }
        catch (EngineException ex)
        {
            await Error(ctx, ex.Status == 503 ? 503 : 502, "SANDBOX_NOT_RUNNING", ex.Message).ConfigureAwait(false);
            return;
        }

        var address = sandboxes.SlotOf(record).SandboxAddress;
        if (wasAsleep && !await SandboxDaemonClient.WaitForPortAsync(address, port, WakeHold, ctx.RequestAborted).ConfigureAwait(false))
        {
            await Error(ctx, 503, "CONNECTION_TIMEOUT", $"sandbox {record.Id} woke up but nothing answered on port {port} within {WakeHold.TotalSeconds:0} s").ConfigureAwait(false);
            return;
        }

        var transformer = port == IngressTarget.ManagementPort ? new DaemonKey(record.DaemonToken)
            : auth.Required || caller is { IsScoped: true } ? StripKey.Instance : HttpTransformer.Default;
        var error = await forwarder.SendAsync(ctx, $"http://{address}:{port}", _client, _config, transformer).ConfigureAwait(false);
        if (error != ForwarderError.None && !ctx.Response.HasStarted)
        {
            var refused = IsConnectionRefused(ctx.Features.Get<IForwarderErrorFeature>()?.Exception);
            await Error(ctx, 502, refused ? "CONNECTION_REFUSED" : "PROXY_ERROR", refused
                ? $"nothing listens on port {port} in sandbox {record.Id}"
                : $"forwarding to sandbox {record.Id} port {port} failed ({error})").ConfigureAwait(false);
        }
        else if (error != ForwarderError.None)
        {
            logger.LogDebug("forwarding to {Id}:{Port} ended with {Error}", record.Id, port, error);
        }
    }

    private (SandboxRecord? Record, int Port) Find(IngressTarget target)
    {
        var live = sandboxes.AllReachable();
        var record = live.FirstOrDefault(s => s.Id == target.Sandbox) ?? live.FirstOrDefault(s => s.Name == target.Sandbox);
        if (record is null && target.AlternativeSandbox is { } whole)
        {
            record = live.FirstOrDefault(s => s.Id == whole) ?? live.FirstOrDefault(s => s.Name == whole);
            return (record, IngressTarget.ManagementPort);
        }

        return (record, target.Port);
    }

    /// <summary>Whether the sandbox's port refused the connection: the socket error somewhere under YARP's exception.</summary>
    private static bool IsConnectionRefused(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
            {
                return true;
            }
        }

        return false;
    }

    private static Task Error(HttpContext ctx, int status, string code, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(new JsonObject { ["error"] = message, ["code"] = code }.ToJsonString(), ctx.RequestAborted);
    }

    /// <summary>Copies the request as YARP does by default, minus the engine's own Authorization header.</summary>
    private sealed class StripKey : HttpTransformer
    {
        public static readonly StripKey Instance = new();

        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
            proxyRequest.Headers.Authorization = null;
        }
    }

    /// <summary>To the sandbox's daemon: the caller's Authorization (the engine key or a fork key) swapped for the daemon's own token.</summary>
    private sealed class DaemonKey(string token) : HttpTransformer
    {
        public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
        {
            await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
            proxyRequest.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
    }
}
