using System.Collections.Frozen;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// Where one sandbox is in its lifecycle. The wire and the store keep it as two strings (<c>status</c> and the suspend
/// tier); this is the one value both are read into and written from.
/// </summary>
internal enum SandboxState
{
    /// <summary>Recorded, not yet booted.</summary>
    Pending,

    /// <summary>The container runs and answers.</summary>
    Running,

    /// <summary>Paused while a snapshot copies its layer (and, for a memory snapshot, dumps it).</summary>
    Snapshotting,

    /// <summary>A CRIU dump is under way; the record's tier says where it started (frozen or running).</summary>
    Suspending,

    /// <summary>Tier 1: runc pause, memory resident.</summary>
    Frozen,

    /// <summary>Tier 2: dumped to disk, no container.</summary>
    Hibernated,

    /// <summary>Gone; nothing leaves this state.</summary>
    Terminated,
}

/// <summary>
/// The sandbox state machine: which moves are legal and the one function that makes them. Every change to a record's
/// status, suspend tier and their timestamps goes through <see cref="MoveTo"/>, so an illegal move (a bug) fails loudly
/// instead of leaving a record the recovery pass cannot read. Modelled on runc's <c>libcontainer/state_linux.go</c>.
/// </summary>
internal static class SandboxLifecycle
{
    private static readonly FrozenDictionary<SandboxState, SandboxState[]> Moves = new Dictionary<SandboxState, SandboxState[]>
    {
        [SandboxState.Pending] = [SandboxState.Running, SandboxState.Terminated],
        [SandboxState.Running] = [SandboxState.Frozen, SandboxState.Suspending, SandboxState.Snapshotting, SandboxState.Terminated],
        // A snapshot always resumes its sandbox, whether it succeeded or not.
        [SandboxState.Snapshotting] = [SandboxState.Running, SandboxState.Terminated],
        [SandboxState.Frozen] = [SandboxState.Running, SandboxState.Suspending, SandboxState.Terminated],
        // A failed dump leaves the container as it was: back to where the dump started (running or frozen).
        [SandboxState.Suspending] = [SandboxState.Hibernated, SandboxState.Running, SandboxState.Frozen, SandboxState.Terminated],
        [SandboxState.Hibernated] = [SandboxState.Running, SandboxState.Terminated],
        [SandboxState.Terminated] = [],
    }.ToFrozenDictionary();

    /// <summary>The record's state, read from its stored status and tier.</summary>
    public static SandboxState StateOf(SandboxRecord record) => (record.Status, record.SuspendTier) switch
    {
        (SandboxStatus.Pending, _) => SandboxState.Pending,
        (SandboxStatus.Running, _) => SandboxState.Running,
        (SandboxStatus.Snapshotting, _) => SandboxState.Snapshotting,
        (SandboxStatus.Suspending, _) => SandboxState.Suspending,
        (SandboxStatus.Suspended, SuspendTier.Hibernated) => SandboxState.Hibernated,
        (SandboxStatus.Suspended, _) => SandboxState.Frozen,
        (SandboxStatus.Terminated, _) => SandboxState.Terminated,
        _ => throw new InvalidSandboxTransitionException(record.Id, $"sandbox {record.Id} has an unknown stored status '{record.Status}'"),
    };

    /// <summary>True when <paramref name="from"/> may move to <paramref name="to"/>.</summary>
    public static bool CanMove(SandboxState from, SandboxState to) => Moves[from].Contains(to);

    /// <summary>Where a dump under way started: the state a failed or interrupted one goes back to.</summary>
    public static SandboxState SuspendingFrom(SandboxRecord record) =>
        record.SuspendTier == SuspendTier.Frozen ? SandboxState.Frozen : SandboxState.Running;

    /// <summary>
    /// Moves the record to <paramref name="to"/>, setting its status, tier and timestamps to match (the caller saves
    /// it). Throws <see cref="InvalidSandboxTransitionException"/> for a move the table does not allow.
    /// </summary>
    public static void MoveTo(SandboxRecord record, SandboxState to, long nowMs, string? terminationReason = null)
    {
        var from = StateOf(record);
        if (!CanMove(from, to))
        {
            throw new InvalidSandboxTransitionException(record.Id,
                $"sandbox {record.Id} cannot go from {Describe(from)} to {Describe(to)}");
        }

        switch (to)
        {
            case SandboxState.Running:
                record.Status = SandboxStatus.Running;
                record.SuspendTier = null;
                record.SuspendedAt = null;
                break;
            case SandboxState.Snapshotting:
                record.Status = SandboxStatus.Snapshotting;
                break;
            case SandboxState.Suspending:
                // The tier stays as it was (frozen or none): it is how a failed dump knows where to go back to.
                record.Status = SandboxStatus.Suspending;
                break;
            case SandboxState.Frozen:
                record.Status = SandboxStatus.Suspended;
                record.SuspendTier = SuspendTier.Frozen;
                record.SuspendedAt ??= nowMs;
                break;
            case SandboxState.Hibernated:
                record.Status = SandboxStatus.Suspended;
                record.SuspendTier = SuspendTier.Hibernated;
                // A frozen sandbox that hibernates has been idle since it froze.
                record.SuspendedAt ??= nowMs;
                break;
            case SandboxState.Terminated:
                record.Status = SandboxStatus.Terminated;
                record.SuspendTier = null;
                record.TerminatedAt = nowMs;
                record.TerminationReason = terminationReason ?? "Terminated";
                break;
            default:
                throw new InvalidSandboxTransitionException(record.Id, $"sandbox {record.Id} cannot be moved to {Describe(to)}");
        }
    }

    /// <summary>The state as a user reads it: the wire's status, with the tier for a suspended sandbox.</summary>
    public static string Describe(SandboxState state) => state switch
    {
        SandboxState.Frozen => "suspended (frozen)",
        SandboxState.Hibernated => "suspended (hibernated)",
        _ => state.ToString().ToLowerInvariant(),
    };
}

/// <summary>A move the sandbox state machine does not allow: an engine bug, answered 500 and never stored.</summary>
internal sealed class InvalidSandboxTransitionException(string sandboxId, string message) : EngineException(500, message)
{
    /// <summary>The sandbox whose record was asked to move.</summary>
    public string SandboxId { get; } = sandboxId;
}
