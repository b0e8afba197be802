using Hands.Engine.Hosting;

namespace Hands.Engine;

/// <summary>What <c>hands doctor</c> learns about this host's ability to run the engine.</summary>
/// <param name="Problem">Null when root, the runtime, the network tools, the init and the daemon are all there; else what to fix.</param>
/// <param name="CriuProblem">Null when CRIU passes <c>criu check</c>; else why memory snapshots and hibernation are off.</param>
/// <param name="Worker">The <c>hands-worker</c> that would be mounted into sandboxes, or null when none was found.</param>
public sealed record EnginePrerequisites(string? Problem, string? CriuProblem, string? Worker)
{
    /// <summary>
    /// Null when <c>conntrack</c> is on the PATH; else what the network telemetry lacks without it and the fix. Optional:
    /// the engine runs without it, and its telemetry then records only policy refusals (and a gap saying why).
    /// </summary>
    public string? ConntrackProblem { get; init; } = FindConntrackProblem();

    private static string? FindConntrackProblem() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin").Split(':').Any(dir => dir.Length > 0 && File.Exists(Path.Combine(dir, "conntrack")))
            ? null
            : "'conntrack' not found: the network telemetry records no connections, only policy refusals; install it: apt-get install conntrack";

    /// <summary>Runs the same probe the engine runs at start, without starting anything.</summary>
    public static async Task<EnginePrerequisites> CheckAsync(EngineOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            var binaries = await EngineBinaries.ProbeAsync(options, cancellationToken).ConfigureAwait(false);
            return new EnginePrerequisites(null, binaries.CriuProblem, binaries.Worker);
        }
        catch (EngineException ex)
        {
            return new EnginePrerequisites(ex.Message, null, null);
        }
    }
}
