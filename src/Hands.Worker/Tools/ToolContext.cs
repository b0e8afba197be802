namespace Hands.Worker.Tools;

/// <summary>What the built-in tools of one session share: the workdir, the path policy, limits and the shell environment.</summary>
public sealed class ToolContext
{
    /// <summary>Default <c>read</c>/<c>edit</c> size cap (256 KiB), as in the SDK workers.</summary>
    public const long DefaultMaxFileBytes = 256 * 1024;

    public ToolContext(string workdir, bool unrestrictedPaths = false, long? maxFileBytes = DefaultMaxFileBytes, IReadOnlyDictionary<string, string>? environment = null)
    {
        Workdir = Path.GetFullPath(workdir);
        UnrestrictedPaths = unrestrictedPaths;
        MaxFileBytes = maxFileBytes;
        Environment = environment ?? ScrubbedEnvironment();
        Paths = new PathPolicy(Workdir, unrestrictedPaths);
    }

    public string Workdir { get; }
    public bool UnrestrictedPaths { get; }
    /// <summary>Null disables the cap.</summary>
    public long? MaxFileBytes { get; }
    /// <summary>The environment of <c>bash</c>, <c>rg</c> and custom tool commands.</summary>
    public IReadOnlyDictionary<string, string> Environment { get; }
    public PathPolicy Paths { get; }

    /// <summary>
    /// The process environment minus every variable whose name starts with <c>ANTHROPIC_</c> (any case): the
    /// environment key, work secret and base URL never reach model-run commands.
    /// </summary>
    public static Dictionary<string, string> ScrubbedEnvironment()
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            if (!key.StartsWith("ANTHROPIC_", StringComparison.OrdinalIgnoreCase) && !key.StartsWith("HANDS_WORKER_SECRET", StringComparison.OrdinalIgnoreCase))
            {
                env[key] = (string?)entry.Value ?? "";
            }
        }

        return env;
    }
}
