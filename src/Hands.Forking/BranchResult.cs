namespace Hands.Forking;

/// <summary>Where a branch is: waiting for a slot or capacity, booting its child, running, or finished (how).</summary>
public enum BranchState
{
    /// <summary>Waiting for a parallelism slot or for the provider's capacity (a 429 waits, it does not fail).</summary>
    Queued,
    /// <summary>Its child sandbox is being created from the snapshot.</summary>
    Forking,
    /// <summary>Its command runs in the child.</summary>
    Running,
    /// <summary>Finished and the judge scored it above zero.</summary>
    Passed,
    /// <summary>Finished and the judge scored it zero or less, or the judge threw.</summary>
    Failed,
    /// <summary>The command ran past the branch timeout and was killed.</summary>
    TimedOut,
    /// <summary>The child could not be created or reached; <see cref="BranchResult.Error"/> says why.</summary>
    Error,
    /// <summary>The exploration was cancelled before this branch finished.</summary>
    Cancelled,
}

/// <summary>How branch states are shown to people (tables, hands-fork's text).</summary>
public static class BranchStateLabels
{
    /// <summary>Live states in lower case; verdicts in capitals (PASS, FAIL, TIMEOUT, ERROR); cancelled in lower case.</summary>
    public static string Label(this BranchState state) => state switch
    {
        BranchState.Queued => "queued",
        BranchState.Forking => "forking",
        BranchState.Running => "running",
        BranchState.Passed => "PASS",
        BranchState.Failed => "FAIL",
        BranchState.TimedOut => "TIMEOUT",
        BranchState.Error => "ERROR",
        _ => "cancelled",
    };
}

/// <summary>The state (live, then final) of one branch.</summary>
public sealed record BranchResult
{
    /// <summary>Position in the input; results are always reported in this order.</summary>
    public required int Index { get; init; }

    public required string Name { get; init; }

    public required BranchState State { get; init; }

    /// <summary>The child sandbox's id, once it exists.</summary>
    public string? SandboxId { get; init; }

    /// <summary>The command's exit code, or minus the signal that ended it; null if it never finished.</summary>
    public int? ExitCode { get; init; }

    /// <summary>The command's run time (not the fork's boot).</summary>
    public TimeSpan? Elapsed { get; init; }

    /// <summary>From the start of the exploration to this branch's end (checkpoint, queueing, boot and run).</summary>
    public TimeSpan? FinishedAfter { get; init; }

    /// <summary>How long the child took to boot from the snapshot.</summary>
    public TimeSpan? ForkTime { get; init; }

    /// <summary>The judge's score (0 unless it finished and was judged).</summary>
    public double Score { get; init; }

    /// <summary>Standard output, at most <see cref="ForkExploreOptions.MaxOutputChars"/> (the tail is kept).</summary>
    public string Stdout { get; init; } = "";

    /// <summary>Standard error, capped like <see cref="Stdout"/>.</summary>
    public string Stderr { get; init; } = "";

    /// <summary>Why the branch failed, errored or timed out; null when it passed.</summary>
    public string? Error { get; init; }

    /// <summary>True when the child was left running (<see cref="ForkExploreOptions.Keep"/>).</summary>
    public bool Kept { get; init; }

    public bool IsFinished => State is not (BranchState.Queued or BranchState.Forking or BranchState.Running);

    public bool Passed => State == BranchState.Passed;
}
