using Hands.Sandboxes.Client;

namespace Hands.Worker.Forking;

/// <summary>
/// The credential that lets this sandbox fork itself, as the orchestrator hands it over (process environment only):
/// <c>HANDS_FORK_KEY</c> (a key the engine scoped to this one sandbox), <c>HANDS_FORK_API_URL</c>,
/// <c>HANDS_FORK_SANDBOX</c>, and <c>HANDS_FORK_ACCESS</c>: <c>tool</c> (only the worker's <c>fork_explore</c> tool
/// holds the key) or <c>bash</c> (the key is also in bash's environment, for <c>hands-fork</c>).
/// </summary>
internal sealed record ForkAccess(string Key, Uri ApiUrl, string SandboxId, bool InBash)
{
    public const string KeyVariable = "HANDS_FORK_KEY";
    public const string ApiUrlVariable = "HANDS_FORK_API_URL";
    public const string SandboxVariable = "HANDS_FORK_SANDBOX";
    public const string AccessVariable = "HANDS_FORK_ACCESS";

    /// <summary>The access this process was given, or null (no key, or an unusable URL).</summary>
    public static ForkAccess? FromEnvironment()
    {
        var key = Environment.GetEnvironmentVariable(KeyVariable);
        var url = Environment.GetEnvironmentVariable(ApiUrlVariable);
        var sandbox = Environment.GetEnvironmentVariable(SandboxVariable) ?? Environment.GetEnvironmentVariable("TENSORLAKE_SANDBOX_ID");
        if (string.IsNullOrEmpty(key) || string.IsNullOrEmpty(sandbox) || !Uri.TryCreate(url, UriKind.Absolute, out var api))
        {
            return null;
        }

        return new ForkAccess(key, api, sandbox, string.Equals(Environment.GetEnvironmentVariable(AccessVariable), "bash", StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>
    /// The engine names a fork key's children under the key's sandbox id only (so no agent can squat a name another
    /// component will use); the id is the key's middle part (<c>hfk_{sandbox}_{mac}</c>).
    /// </summary>
    public string ChildNamePrefix
    {
        get
        {
            var scope = Key.StartsWith("hfk_", StringComparison.Ordinal) && Key.LastIndexOf('_') is var end && end > 4 ? Key[4..end] : SandboxId;
            return scope + "-fork";
        }
    }

    public TensorlakeClient CreateClient() => new(new TensorlakeClientOptions { ApiUrl = ApiUrl, ApiKey = Key });
}
