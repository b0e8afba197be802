namespace Hands.Forking;

/// <summary>What a judge sees of one finished branch: its command's exit, output and time.</summary>
/// <param name="Branch">The branch that ran.</param>
/// <param name="ExitCode">The exit code, or minus the signal that ended it.</param>
/// <param name="Stdout">Standard output (lines joined with <c>\n</c>).</param>
/// <param name="Stderr">Standard error.</param>
/// <param name="Elapsed">From the command's start to its exit (the fork's boot is not counted).</param>
public sealed record BranchRun(ForkBranch Branch, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed);

/// <summary>
/// Scores a finished branch. A score above zero passes; the highest passing score wins, ties to the faster branch.
/// A judge that throws scores its branch as failed (the exception's message is reported).
/// </summary>
public delegate double BranchJudge(BranchRun run);

/// <summary>Ready-made judges.</summary>
public static class BranchJudges
{
    /// <summary>The default: exit code 0 scores 1 (pass), anything else 0 (fail).</summary>
    public static BranchJudge ExitCode { get; } = run => run.ExitCode == 0 ? 1 : 0;

    /// <summary>Passes when the command exited 0 and its output contains <paramref name="text"/>.</summary>
    public static BranchJudge ExitZeroAndOutputContains(string text) =>
        run => run.ExitCode == 0 && (run.Stdout.Contains(text, StringComparison.Ordinal) || run.Stderr.Contains(text, StringComparison.Ordinal)) ? 1 : 0;
}
