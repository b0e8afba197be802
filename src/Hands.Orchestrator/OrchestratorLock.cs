namespace Hands.Orchestrator;

/// <summary>
/// One orchestrator per environment on a host: an exclusive advisory lock (flock, released by the kernel when the
/// holder dies, so a crash never leaves it stuck) on <c>ORCHESTRATOR_LOCK_FILE</c>, by default
/// <c>/tmp/hands-orchestrator-{environment}.lock</c>. Who holds it (pid, mode, start time) is written beside it, so a
/// second orchestrator's error names the holder.
/// </summary>
public sealed class OrchestratorLock : IDisposable
{
    private readonly FileStream _lock;
    private readonly string _holderFile;

    private OrchestratorLock(FileStream @lock, string holderFile)
    {
        _lock = @lock;
        _holderFile = holderFile;
    }

    /// <summary>The default lock file for an environment.</summary>
    public static string DefaultPath(string environmentId) =>
        Path.Combine(Path.GetTempPath(), $"hands-orchestrator-{SandboxNames.ForSession(environmentId)[SandboxNames.SessionPrefix.Length..]}.lock");

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
        return new OrchestratorLock(stream, holderFile);
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
