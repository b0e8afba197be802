using System.Runtime.InteropServices;

namespace Hands.Engine.Hosting;

/// <summary>
/// The engine's crash windows, named: the places where dying (kill -9, a power cut) leaves a record and the host
/// disagreeing, which <see cref="Sandboxes.SandboxManager.RecoverAsync"/> must settle. A fault-injection test arms one with
/// <c>HANDS_ENGINE_CRASH_AT=&lt;name&gt;</c> and the engine then SIGKILLs itself there, so recovery is proven against a
/// real crash rather than a graceful stop (CrashRecoveryTests). Unset, each is one string comparison.
/// </summary>
internal static partial class CrashPoints
{
    /// <summary>The container runs; its record still says pending.</summary>
    public const string CreateBooted = "create.booted";

    /// <summary>The container and its mounts are gone; its record still says live.</summary>
    public const string DeleteTornDown = "delete.torn-down";

    /// <summary>The CRIU dump is complete and the container deleted; the record still says suspending.</summary>
    public const string HibernateDumped = "hibernate.dumped";

    /// <summary>
    /// A hibernated sandbox is restored by CRIU but its veth's host end is still down (the dump's network lock) and its
    /// dump still on disk; the record still says suspended.
    /// </summary>
    public const string WakeRestored = "wake.restored";

    /// <summary>A suspended sandbox is thawed or restored (its dump deleted); the record still says suspended.</summary>
    public const string WakeResumed = "wake.resumed";

    /// <summary>The snapshot's layer is in place; no snapshot record names it yet, and the sandbox is paused.</summary>
    public const string SnapshotLayerMoved = "snapshot.layer-moved";

    /// <summary>A memory fork is restored but its inherited processes (the parent's worker) are not yet killed.</summary>
    public const string ForkRestored = "fork.restored";

    /// <summary>A memory fork's record names the slot of the spare network it took; the spare is not yet moved to the fork's name.</summary>
    public const string ForkSpareTaken = "fork.spare-taken";

    /// <summary>A live resize's new limits are in the cgroup and the bundle; its record still says pending, with the old ones.</summary>
    public const string ResizeApplied = "resize.applied";

    /// <summary>Every crash point, for tests that walk them all.</summary>
    public static readonly IReadOnlyList<string> All = [CreateBooted, DeleteTornDown, HibernateDumped, WakeRestored, WakeResumed, SnapshotLayerMoved, ForkSpareTaken, ForkRestored, ResizeApplied];

    private const int SigKill = 9;
    private static readonly string? Armed = Environment.GetEnvironmentVariable("HANDS_ENGINE_CRASH_AT");

    /// <summary>Dies here, as from kill -9, when this point is the one armed.</summary>
    public static void Reach(string name)
    {
        if (Armed is not null && string.Equals(Armed, name, StringComparison.Ordinal))
        {
            _ = Kill(Environment.ProcessId, SigKill);
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
