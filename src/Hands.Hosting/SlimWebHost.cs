using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Hands.Hosting;

/// <summary>The one Kestrel bootstrap of the control plane, the engine, the webhook receiver and the sandbox daemon.</summary>
public static class SlimWebHost
{
    /// <summary>A slim (AOT-friendly) builder listening as <paramref name="settings"/> says, with only its logging providers.</summary>
    public static WebApplicationBuilder CreateBuilder(WebHostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = settings.WatchConfiguration
            ? WebApplication.CreateSlimBuilder()
            : WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Logging.ClearProviders();
        settings.Logging?.Invoke(builder.Logging);
        builder.WebHost.UseUrls(settings.Url);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = settings.MaxRequestBodySize;
            k.AddServerHeader = settings.ServerHeader;
        });
        return builder;
    }

    /// <summary>The first address a started application listens on (with the port Kestrel chose for port 0).</summary>
    public static Uri BoundAddress(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First());
    }
}
