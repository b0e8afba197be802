using System.Diagnostics.Metrics;
using Hands.Common;

namespace Hands.Forking;

/// <summary>
/// Fork-and-explore's instruments (the <c>Hands</c> meter, exported with the host's others): one count per exploration
/// by outcome, its duration, and one count per branch by how it ended. Recorded in whichever process runs the
/// explorer (<c>hands fork-explore</c>, the orchestrator's <c>fork_explore</c> tool host, a library user).
/// </summary>
internal static class ForkTelemetry
{
    /// <summary>Explorations by <c>hands.outcome</c>: <c>winner</c> (a branch passed), <c>no_winner</c>, <c>error</c> (nothing ran: the parent or the checkpoint failed, or cleanup threw), <c>cancelled</c>.</summary>
    public static readonly Counter<long> Runs = HandsTelemetry.Meter.CreateCounter<long>(
        "hands.fork.runs", "{run}", "Fork-and-explore runs, by outcome and snapshot type");

    /// <summary>From the call to the last branch's end (cleanup excluded for a finished run), by the same attributes as <see cref="Runs"/>.</summary>
    public static readonly Histogram<double> RunDuration = HandsTelemetry.Meter.CreateHistogram<double>(
        "hands.fork.run.duration", "s", "Fork-and-explore runs from the call to the last branch's end, by outcome and snapshot type");

    /// <summary>Finished branches by <c>hands.fork.branch.state</c>: <c>passed</c>, <c>failed</c>, <c>timed_out</c>, <c>error</c>, <c>cancelled</c>.</summary>
    public static readonly Counter<long> Branches = HandsTelemetry.Meter.CreateCounter<long>(
        "hands.fork.branches", "{branch}", "Fork-and-explore branches, by how they ended");

    public static void RecordRun(string outcome, string snapshotType, TimeSpan elapsed, IReadOnlyList<BranchResult>? branches)
    {
        var outcomeTag = new KeyValuePair<string, object?>("hands.outcome", outcome);
        var typeTag = new KeyValuePair<string, object?>("hands.snapshot.type", snapshotType);
        Runs.Add(1, outcomeTag, typeTag);
        RunDuration.Record(elapsed.TotalSeconds, outcomeTag, typeTag);
        foreach (var branch in branches ?? [])
        {
            Branches.Add(1, new KeyValuePair<string, object?>("hands.fork.branch.state", StateName(branch.State)));
        }
    }

    internal static string StateName(BranchState state) => state switch
    {
        BranchState.Passed => "passed",
        BranchState.Failed => "failed",
        BranchState.TimedOut => "timed_out",
        BranchState.Error => "error",
        BranchState.Cancelled => "cancelled",
        // A result is always finished; a live state here would be a bug upstream, counted as what it is.
        _ => state.ToString().ToLowerInvariant(),
    };
}
