namespace Hands.Forking;

/// <summary>The outcome of one exploration: every branch in input order, the winner, and what was kept or adopted.</summary>
public sealed record ForkExploreResult
{
    /// <summary>The parent's sandbox id.</summary>
    public required string ParentId { get; init; }

    public required string SnapshotId { get; init; }

    public required string SnapshotType { get; init; }

    /// <summary>Every branch, in the order given.</summary>
    public required IReadOnlyList<BranchResult> Branches { get; init; }

    /// <summary>The best passing branch (<see cref="PickBest"/>), or null when none passed.</summary>
    public BranchResult? Winner => PickBest(Branches);

    /// <summary>True when the parent was suspended and had to be resumed before the checkpoint.</summary>
    public bool ParentResumed { get; init; }

    /// <summary>True when the snapshot was left in place (<see cref="ForkExploreOptions.Keep"/>).</summary>
    public bool SnapshotKept { get; init; }

    /// <summary>What <see cref="ForkExploreOptions.Adopt"/> brought into the parent; null when not asked or no winner.</summary>
    public AdoptReport? Adopted { get; init; }

    /// <summary>How long the checkpoint took.</summary>
    public TimeSpan CheckpointTime { get; init; }

    /// <summary>From the call to the last branch's end (cleanup not included).</summary>
    public TimeSpan Elapsed { get; init; }

    /// <summary>The passing branch with the highest score; ties go to the shorter run, then to the earlier branch.</summary>
    public static BranchResult? PickBest(IEnumerable<BranchResult> branches) =>
        branches.Where(b => b.Passed)
            .OrderByDescending(b => b.Score)
            .ThenBy(b => b.Elapsed ?? TimeSpan.MaxValue)
            .ThenBy(b => b.Index)
            .FirstOrDefault();
}

/// <summary>Files the winner changed under the adopt directory and that were copied into (or removed from) the parent.</summary>
/// <param name="Directory">The adopted tree.</param>
/// <param name="Copied">Paths (relative to <paramref name="Directory"/>) new or changed in the winner.</param>
/// <param name="Deleted">Paths the winner removed.</param>
public sealed record AdoptReport(string Directory, IReadOnlyList<string> Copied, IReadOnlyList<string> Deleted);
