using Hands.Sandboxes.Client;

namespace Hands.Cli.Commands;

/// <summary>
/// Which Tensorlake API the sandbox verbs drive: <c>TENSORLAKE_API_URL</c> when set; else Tensorlake's cloud when
/// <c>TENSORLAKE_API_KEY</c> is set; else the local engine at http://127.0.0.1:8900. The key is
/// <c>TENSORLAKE_API_KEY</c>, or <c>HANDS_ENGINE_API_KEY</c> for a local engine started with one.
/// </summary>
internal static class SandboxClientFactory
{
    /// <summary>Where <c>hands engine</c> serves by default.</summary>
    public const string LocalEngineUrl = "http://127.0.0.1:8900";

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

        return options;
    }

    /// <summary>Connects to a sandbox's own API by id or name (looked up first, so the server's sandbox_url is used).</summary>
    public static async Task<SandboxProxyClient> ProxyAsync(TensorlakeClient client, string idOrName, CancellationToken ct) =>
        client.Proxy(await client.GetAsync(idOrName, ct));
}
