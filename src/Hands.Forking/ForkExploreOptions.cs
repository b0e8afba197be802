using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>How <see cref="ForkExplorer"/> checkpoints, runs, judges and cleans up.</summary>
public sealed class ForkExploreOptions
{
    /// <summary><c>filesystem</c> (the default: children cold-boot on the parent's files) or <c>memory</c> (children also resume the parent's processes).</summary>
    public string SnapshotType { get; set; } = Sandboxes.Models.SnapshotType.Filesystem;

    /// <summary>At most this many children at once; null runs every branch at once. The rest wait, queued.</summary>
    public int? MaxParallelism { get; set; }

    /// <summary>A branch's command is killed and reported <see cref="BranchState.TimedOut"/> after this long.</summary>
    public TimeSpan BranchTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a branch may wait for the provider's capacity (429) before it is reported as an error.</summary>
    public TimeSpan CapacityWait { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How long the checkpoint may take.</summary>
    public TimeSpan SnapshotTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Scores each finished branch; the default passes exit code 0.</summary>
    public BranchJudge Judge { get; set; } = BranchJudges.ExitCode;

    /// <summary>Keep every child and the snapshot (for inspection); by default all are deleted at the end.</summary>
    public bool Keep { get; set; }

    /// <summary>Copy the winner's changed files under <see cref="AdoptDirectory"/> back into the parent.</summary>
    public bool Adopt { get; set; }

    /// <summary>The tree whose changes <see cref="Adopt"/> brings back (an absolute path in the sandbox).</summary>
    public string AdoptDirectory { get; set; } = "/workspace";

    /// <summary>Children are named <c>{prefix}-{run}-{index}</c>, so cleanup finds them even if an answer was lost.</summary>
    public string ChildNamePrefix { get; set; } = "fork";

    /// <summary>Output kept per stream per branch (the tail).</summary>
    public int MaxOutputChars { get; set; } = 64 * 1024;

    /// <summary>Told every state change of every branch (from any thread); for live tables.</summary>
    public Action<BranchResult>? OnBranchChanged { get; set; }

    /// <summary>Told each step of the exploration as a sentence (resuming, snapshotting, adopting, cleaning up).</summary>
    public Action<string>? OnProgress { get; set; }

    internal void Validate()
    {
        if (SnapshotType is not (Sandboxes.Models.SnapshotType.Filesystem or Sandboxes.Models.SnapshotType.Memory))
        {
            throw new ArgumentException($"the checkpoint type is 'filesystem' or 'memory', not '{SnapshotType}'");
        }

        if (MaxParallelism is < 1)
        {
            throw new ArgumentException($"parallelism must be at least 1, not {MaxParallelism}");
        }

        if (BranchTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("the branch timeout must be positive");
        }

        if (Adopt && !AdoptDirectory.StartsWith('/'))
        {
            throw new ArgumentException($"the adopt directory must be an absolute path, not '{AdoptDirectory}'");
        }
    }
}
