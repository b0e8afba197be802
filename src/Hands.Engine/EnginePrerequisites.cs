using Hands.Engine.Hosting;

namespace Hands.Engine;

/// <summary>What <c>hands doctor</c> learns about this host's ability to run the engine, one finding per prerequisite.</summary>
/// <param name="Problem">Null when the engine would start here; else the engine's own refusal (what to fix).</param>
/// <param name="Root">Whether this process runs as root (the engine must).</param>
/// <param name="Programs">Every host program the engine runs, found or not, with its Debian package.</param>
/// <param name="SandboxDaemon">The <c>hands-sandboxd</c> the engine would bind into sandboxes, or null when none was found.</param>
/// <param name="Worker">The <c>hands-worker</c> that would be mounted into sandboxes, or null when none was found.</param>
/// <param name="Criu">The CRIU that passes <c>criu check</c>, or null (then <paramref name="CriuProblem"/> says why).</param>
/// <param name="CriuProblem">Null when CRIU passes <c>criu check</c>; else why memory snapshots and hibernation are off.</param>
public sealed record EnginePrerequisites(string? Problem, bool Root, IReadOnlyList<HostProgram> Programs, string? SandboxDaemon, string? Worker, string? Criu, string? CriuProblem)
{
    /// <summary>The one <c>apt-get install</c> line for every missing program (required or not), or null when none is.</summary>
    public string? InstallCommand => Programs.Any(p => !p.Found) ? EngineBinaries.InstallCommand(Programs.Where(p => !p.Found)) : null;

    /// <summary>Runs the probe the engine runs at start, without starting anything, and looks at each prerequisite on its own.</summary>
    public static async Task<EnginePrerequisites> CheckAsync(EngineOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        string? problem = null;
        EngineBinaries? binaries = null;
        try
        {
            binaries = await EngineBinaries.ProbeAsync(options, cancellationToken).ConfigureAwait(false);
        }
        catch (EngineException ex)
        {
            problem = ex.Message;
        }

        var root = Native.GetEffectiveUserId() == 0;
        var programs = await EngineBinaries.FindHostProgramsAsync(options, cancellationToken).ConfigureAwait(false);
        string? daemon, worker;
        try
        {
            daemon = EngineBinaries.FindSandboxDaemon(options);
            worker = EngineBinaries.FindWorker(options);
        }
        catch (EngineException)
        {
            (daemon, worker) = (null, null);
        }

        // The engine's own probe checked CRIU when it got that far; criu check needs root, so without it there is no answer.
        var (criu, criuProblem) = binaries is not null ? (binaries.Criu, binaries.CriuProblem)
            : root ? await EngineBinaries.ProbeCriuAsync(options.CriuBinary, cancellationToken).ConfigureAwait(false)
            : (null, "not checked: criu check needs root (run sudo hands doctor)");
        return new EnginePrerequisites(problem, root, programs, daemon, worker, criu, criuProblem);
    }
}
