using Hands.Sandboxes.Client;

namespace Hands.Cli.Commands;

/// <summary>
/// Which Tensorlake API the sandbox verbs drive: <c>TENSORLAKE_API_URL</c> when set; else Tensorlake's cloud when
/// <c>TENSORLAKE_API_KEY</c> is set; else the local engine at http://127.0.0.1:8900. The key is
/// <c>TENSORLAKE_API_KEY</c>, or <c>HANDS_ENGINE_API_KEY</c>, or for the local engine the key it keeps in its data
/// directory (<c>HANDS_ENGINE_DATA</c>, default <c>.hands/engine</c>, then the installed engine's
/// <c>/var/lib/hands/engine</c>; readable by root only).
/// </summary>
internal static class SandboxClientFactory
{
    /// <summary>Where <c>hands engine</c> serves by default.</summary>
    public const string LocalEngineUrl = "http://127.0.0.1:8900";

    /// <summary>The local engine's data directory, where its generated key is kept.</summary>
    public static string LocalEngineData => Environment.GetEnvironmentVariable("HANDS_ENGINE_DATA") is { Length: > 0 } dir ? dir : ".hands/engine";

    /// <summary>The data directory of the engine <c>scripts/install.sh</c> sets up as a service.</summary>
    public const string InstalledEngineData = "/var/lib/hands/engine";

    public static TensorlakeClient Create() => new(Options());

    /// <summary>The options <see cref="Create"/> uses: API URL and key resolved as the class summary says.</summary>
    public static TensorlakeClientOptions Options()
    {
        var options = TensorlakeClientOptions.FromEnvironment();
        if (Environment.GetEnvironmentVariable("TENSORLAKE_API_URL") is not { Length: > 0 } && options.ApiKey is null)
        {
            options.ApiUrl = new Uri(LocalEngineUrl);
        }

        if (options.ApiKey is null && Environment.GetEnvironmentVariable("HANDS_ENGINE_API_KEY") is { Length: > 0 } engineKey)
        {
            options.ApiKey = engineKey;
        }

        if (options.ApiKey is null && options.ApiUrl.IsLoopback && OperatingSystem.IsLinux() && Hands.Engine.Api.EngineApiKeyFile.TryRead(LocalEngineData) is { } storedKey)
        {
            options.ApiKey = storedKey;
        }

        // The installed engine's (scripts/install.sh, hands-engine.service), when HANDS_ENGINE_DATA names no other.
        if (options.ApiKey is null && options.ApiUrl.IsLoopback && OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("HANDS_ENGINE_DATA") is not { Length: > 0 }
            && Hands.Engine.Api.EngineApiKeyFile.TryRead(InstalledEngineData) is { } installedKey)
        {
            options.ApiKey = installedKey;
        }

        return options;
    }

    /// <summary>Connects to a sandbox's own API by id or name (looked up first, so the server's sandbox_url is used).</summary>
    public static async Task<SandboxProxyClient> ProxyAsync(TensorlakeClient client, string idOrName, CancellationToken ct) =>
        client.Proxy(await client.GetAsync(idOrName, ct));
}
