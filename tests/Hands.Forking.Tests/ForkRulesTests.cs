using Hands.Forking;

namespace Hands.Forking.Tests;

/// <summary>The rules of fork-and-explore that need no sandbox: parsing, the winner, change detection.</summary>
[Trait("Tier", "Unit")]
public sealed class ForkRulesTests
{
    [Theory]
    [InlineData("fix1=sh test.sh", "fix1", "sh test.sh")]
    [InlineData("a=x=1 && echo $x", "a", "x=1 && echo $x")]
    [InlineData(" b.2 =true", "b.2", "true")]
    public void A_branch_is_name_equals_command(string text, string name, string command)
    {
        var branch = ForkBranch.Parse(text);
        Assert.Equal(name, branch.Name);
        Assert.Equal(command, branch.Command);
    }

    [Theory]
    [InlineData("no-equals")]
    [InlineData("=command")]
    [InlineData("name=")]
    [InlineData("bad name=true")]
    [InlineData("a/b=true")]
    public void A_malformed_branch_is_refused(string text) => Assert.Throws<FormatException>(() => ForkBranch.Parse(text));

    [Fact]
    public void The_winner_is_the_highest_passing_score_then_the_faster_then_the_earlier()
    {
        static BranchResult B(int index, BranchState state, double score, double seconds) =>
            new() { Index = index, Name = "b" + index, State = state, Score = score, Elapsed = TimeSpan.FromSeconds(seconds) };

        Assert.Null(ForkExploreResult.PickBest([B(0, BranchState.Failed, 0, 1), B(1, BranchState.TimedOut, 0, 9)]));
        Assert.Equal(2, ForkExploreResult.PickBest([B(0, BranchState.Passed, 1, 3), B(1, BranchState.Failed, 5, 1), B(2, BranchState.Passed, 2, 9)])?.Index);
        Assert.Equal(1, ForkExploreResult.PickBest([B(0, BranchState.Passed, 1, 3), B(1, BranchState.Passed, 1, 2)])?.Index);
        Assert.Equal(0, ForkExploreResult.PickBest([B(0, BranchState.Passed, 1, 2), B(1, BranchState.Passed, 1, 2)])?.Index);
    }

    [Fact]
    public void The_default_judge_passes_exit_zero_only()
    {
        var branch = new ForkBranch("a", "true");
        Assert.Equal(1, BranchJudges.ExitCode(new BranchRun(branch, 0, "", "", TimeSpan.Zero)));
        Assert.Equal(0, BranchJudges.ExitCode(new BranchRun(branch, 3, "", "", TimeSpan.Zero)));
        Assert.Equal(0, BranchJudges.ExitCode(new BranchRun(branch, -9, "", "", TimeSpan.Zero)));
        Assert.Equal(0, BranchJudges.ExitZeroAndOutputContains("PASS")(new BranchRun(branch, 0, "FAIL", "", TimeSpan.Zero)));
        Assert.Equal(1, BranchJudges.ExitZeroAndOutputContains("PASS")(new BranchRun(branch, 0, "PASS 3/3", "", TimeSpan.Zero)));
    }

    [Fact]
    public void A_manifest_diff_finds_new_changed_and_removed_files()
    {
        var before = FileManifest.Parse("644\t10\t1.0\tkeep.txt\0644\t5\t1.0\tchange.txt\0755\t5\t1.0\tmode.sh\0644\t1\t1.0\tgone.txt\0malformed record\0");
        var after = FileManifest.Parse("644\t10\t1.0\tkeep.txt\0644\t5\t2.0\tchange.txt\0644\t5\t1.0\tmode.sh\0644\t3\t2.0\tdir/new\nline\ttab.txt\0777\t8\t2.0\tlink\0");
        var (changed, deleted) = FileManifest.Diff(before, after);
        Assert.Equal(["change.txt", "dir/new\nline\ttab.txt", "link", "mode.sh"], changed);
        Assert.Equal(["gone.txt"], deleted);
    }
}
