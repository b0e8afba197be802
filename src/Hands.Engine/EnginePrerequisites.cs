using Hands.Engine.Hosting;

namespace Hands.Engine;

/// <summary>What <c>hands doctor</c> learns about this host's ability to run the engine.</summary>
/// <param name="Problem">Null when root, the runtime, the network tools, the init and the daemon are all there; else what to fix.</param>
/// <param name="CriuProblem">Null when CRIU passes <c>criu check</c>; else why memory snapshots and hibernation are off.</param>
/// <param name="Worker">The <c>hands-worker</c> that would be mounted into sandboxes, or null when none was found.</param>
public sealed record EnginePrerequisites(string? Problem, string? CriuProblem, string? Worker)
{
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
