using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hands.Testing;

/// <summary>
/// A loopback HTTP server that answers with canned responses in the hosted service's exact wire forms (the service
/// itself is external). It records the requests it saw.
/// </summary>
public sealed class LoopbackStub : IAsyncDisposable
{
    private readonly WebApplication _app;

    private LoopbackStub(WebApplication app, Uri baseAddress)
    {
        _app = app;
        BaseAddress = baseAddress;
    }

    public Uri BaseAddress { get; }
    public List<RecordedRequest> Requests { get; } = [];

    public static async Task<LoopbackStub> StartAsync(Func<HttpContext, Task> handler)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        LoopbackStub? stub = null;
        app.Run(async context =>
        {
            context.Request.EnableBuffering(); // handlers may read the body again
            using var reader = new StreamReader(context.Request.Body, leaveOpen: true);
            var body = await reader.ReadToEndAsync();
            context.Request.Body.Position = 0;
            lock (stub!.Requests)
            {
                stub.Requests.Add(new RecordedRequest(context.Request.Method, context.Request.Path + context.Request.QueryString,
                    context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString()), body));
            }

            await handler(context);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        stub = new LoopbackStub(app, new Uri(address));
        return stub;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

public sealed record RecordedRequest(string Method, string PathAndQuery, Dictionary<string, string> Headers, string Body);
