using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Tests;

/// <summary>
/// A real HTTP server on the host's loopback, as a sandbox sees it through a host-port forward: it answers
/// <c>served {path}</c> and records every request that reached it as <c>METHOD /path</c>.
/// </summary>
internal sealed class HostRecorder : IAsyncDisposable
{
    private readonly WebApplication _app;

    private HostRecorder(WebApplication app) => _app = app;

    /// <summary>What reached the host, in order.</summary>
    public ConcurrentQueue<string> Seen { get; } = new();

    public static async Task<HostRecorder> StartAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var recorder = new HostRecorder(builder.Build());
        recorder._app.Run(async context =>
        {
            recorder.Seen.Enqueue($"{context.Request.Method} {context.Request.Path}");
            await context.Response.WriteAsync("served " + context.Request.Path);
        });
        await recorder._app.StartAsync();
        return recorder;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
