namespace Hands.Orchestrator;

/// <summary>
/// One orchestrator per environment on a host: an exclusive advisory lock (flock, released by the kernel when the
/// holder dies, so a crash never leaves it stuck) on <c>ORCHESTRATOR_LOCK_FILE</c>, by default
/// <c>/tmp/hands-orchestrator-{environment}.lock</c>. Who holds it (pid, mode, start time) is written beside it, so a
/// second orchestrator's error names the holder, and so are the holder's in-flight claims (<see cref="ClaimsDirectory"/>).
/// </summary>
public sealed class OrchestratorLock : IDisposable
{
    private readonly FileStream _lock;
    private readonly string _holderFile;

    private OrchestratorLock(FileStream @lock, string path, string holderFile)
    {
        _lock = @lock;
        Path = path;
        _holderFile = holderFile;
    }

    /// <summary>The lock file.</summary>
    public string Path { get; }

    /// <summary>
    /// Where this environment's orchestrator records its in-flight claims (<see cref="ClaimRecords"/>): the lock file's
    /// path plus <c>.claims</c>. Beside the lock because only the lock's holder may read or write it.
    /// </summary>
    public string ClaimsDirectory => Path + ".claims";

    /// <summary>The default lock file for an environment.</summary>
    public static string DefaultPath(string environmentId) =>
        System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"hands-orchestrator-{SandboxNames.ForSession(environmentId)[SandboxNames.SessionPrefix.Length..]}.lock");

    /// <summary>Takes the lock or throws <see cref="OrchestratorException"/> naming the orchestrator that holds it.</summary>
    public static OrchestratorLock Acquire(string environmentId, string mode, string? path = null)
    {
        path ??= Environment.GetEnvironmentVariable("ORCHESTRATOR_LOCK_FILE") is { Length: > 0 } configured ? configured : DefaultPath(environmentId);
        var holderFile = path + ".holder";
        FileStream stream;
        try
        {
            // FileShare.None is an exclusive flock on Unix.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            var holder = File.Exists(holderFile) ? File.ReadAllText(holderFile).Trim() : "unknown holder";
            throw new OrchestratorException($"another orchestrator already serves environment {environmentId} ({holder}; lock {path}). Stop it first, or set ORCHESTRATOR_LOCK_FILE to run a second one on purpose.");
        }

        File.WriteAllText(holderFile, $"pid {Environment.ProcessId}, mode {mode}, since {DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\n");
        return new OrchestratorLock(stream, path, holderFile);
    }

    public void Dispose()
    {
        try
        {
            File.Delete(_holderFile);
        }
        catch (IOException)
        {
            // Best effort: the lock itself is what counts.
        }

        _lock.Dispose();
    }
}
