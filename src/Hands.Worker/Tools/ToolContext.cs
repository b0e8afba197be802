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
    /// Told the pid of every helper process a call runs in (the bash session, a custom tool's command), so the journal
    /// can record it and a successor worker can stop what a killed one left running.
    /// </summary>
    internal Action<int>? HelperProcessStarted { get; set; }

    /// <summary>
    /// The process environment minus every variable whose name starts with <c>ANTHROPIC_</c> (any case): the
    /// environment key, work secret and base URL never reach model-run commands. The fork-quarantine marker
    /// (<c>HANDS_FORK_POLICY</c>) is the worker's own and is not passed on, so what bash starts survives a memory fork.
    /// The fork key and its URL reach bash only with <c>HANDS_FORK_ACCESS=bash</c> (for <c>hands-fork</c>).
    /// The trace exporter's headers (<c>OTEL_EXPORTER_OTLP_HEADERS</c>, <c>OTEL_EXPORTER_OTLP_TRACES_HEADERS</c>, ...:
    /// a collector's API key goes there) and the worker's own parent trace context (<c>TRACEPARENT</c>,
    /// <c>TRACESTATE</c>) are the worker's, not the commands'.
    /// </summary>
    public static Dictionary<string, string> ScrubbedEnvironment()
    {
        var forkInBash = string.Equals(System.Environment.GetEnvironmentVariable("HANDS_FORK_ACCESS"), "bash", StringComparison.OrdinalIgnoreCase);
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (System.Collections.DictionaryEntry entry in System.Environment.GetEnvironmentVariables())
        {
            var key = (string)entry.Key;
            var hidden = key.StartsWith("ANTHROPIC_", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("HANDS_WORKER_SECRET", StringComparison.OrdinalIgnoreCase)
                || key.Equals("HANDS_FORK_POLICY", StringComparison.OrdinalIgnoreCase)
                || (key.StartsWith("OTEL_EXPORTER_OTLP", StringComparison.OrdinalIgnoreCase) && key.EndsWith("HEADERS", StringComparison.OrdinalIgnoreCase))
                || key.Equals("TRACEPARENT", StringComparison.OrdinalIgnoreCase)
                || key.Equals("TRACESTATE", StringComparison.OrdinalIgnoreCase)
                || (!forkInBash && key.StartsWith("HANDS_FORK_", StringComparison.OrdinalIgnoreCase));
            if (!hidden)
            {
                env[key] = (string?)entry.Value ?? "";
            }
        }

        return env;
    }
}
