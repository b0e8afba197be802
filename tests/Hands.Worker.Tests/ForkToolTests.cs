using System.Text.Json;
using Hands.Sandboxes.Models;
using Hands.Worker.Forking;
using Hands.Worker.Tools;

namespace Hands.Worker.Tests;

/// <summary>The fork_explore tool's input rules and what of the fork access reaches bash.</summary>
public sealed class ForkToolTests
{
    [Fact]
    public void The_tool_input_becomes_branches_and_options_with_the_workdir_as_default()
    {
        var input = JsonDocument.Parse("""
            {"branches":[{"name":"a","command":"sh test.sh","env":{"X":"1","N":2}},{"name":"b","command":"true"}],
             "snapshot_type":"memory","parallel":2,"timeout_seconds":30,"adopt":true}
            """).RootElement;
        var (branches, options) = ForkExploreTool.Parse(input, "/workspace");
        Assert.Equal(["a", "b"], branches.Select(b => b.Name));
        Assert.Equal("1", branches[0].Environment["X"]);
        Assert.Equal("2", branches[0].Environment["N"]);
        Assert.All(branches, b => Assert.Equal("/workspace", b.WorkingDirectory));
        Assert.Equal(SnapshotType.Memory, options.SnapshotType);
        Assert.Equal(2, options.MaxParallelism);
        Assert.Equal(TimeSpan.FromSeconds(30), options.BranchTimeout);
        Assert.True(options.Adopt);
        Assert.Equal("/workspace", options.AdoptDirectory);

        var defaults = ForkExploreTool.Parse(JsonDocument.Parse("""{"branches":[],"workdir":"/src"}""").RootElement, "/workspace").Options;
        Assert.Equal(SnapshotType.Filesystem, defaults.SnapshotType);
        Assert.Null(defaults.MaxParallelism);
        Assert.False(defaults.Adopt);
        Assert.Equal("/src", defaults.AdoptDirectory);
    }

    [Theory]
    [InlineData("""{"branches":[{},{},{},{}]}""", 5 + 3)]
    [InlineData("""{"branches":[{},{},{},{}],"parallel":2,"timeout_seconds":60}""", 2 + 3)]
    [InlineData("""{"branches":[{},{},{}],"parallel":2,"timeout_seconds":120}""", 4 + 3)]
    [InlineData("{}", 5 + 3)]
    public void A_fork_explore_call_may_take_every_wave_of_branches_plus_three_minutes(string json, int minutes) =>
        Assert.Equal(TimeSpan.FromMinutes(minutes), ForkExploreTool.Budget(JsonDocument.Parse(json).RootElement));

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"branches":"a=b"}""")]
    [InlineData("[]")]
    public void Input_without_a_branch_array_is_a_tool_error(string json) =>
        Assert.Throws<ToolError>(() => ForkExploreTool.Parse(JsonDocument.Parse(json).RootElement, "/workspace"));

    [Fact]
    public void Bash_never_sees_the_quarantine_marker_and_sees_the_fork_key_only_with_bash_access()
    {
        var saved = new[] { "HANDS_FORK_KEY", "HANDS_FORK_ACCESS", "HANDS_FORK_POLICY" }.ToDictionary(v => v, Environment.GetEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable("HANDS_FORK_KEY", "hfk_test");
            Environment.SetEnvironmentVariable("HANDS_FORK_POLICY", "terminate");
            Environment.SetEnvironmentVariable("HANDS_FORK_ACCESS", "tool");
            var toolOnly = ToolContext.ScrubbedEnvironment();
            Assert.False(toolOnly.ContainsKey("HANDS_FORK_KEY"));
            Assert.False(toolOnly.ContainsKey("HANDS_FORK_POLICY"));

            Environment.SetEnvironmentVariable("HANDS_FORK_ACCESS", "bash");
            var bash = ToolContext.ScrubbedEnvironment();
            Assert.Equal("hfk_test", bash["HANDS_FORK_KEY"]);
            Assert.False(bash.ContainsKey("HANDS_FORK_POLICY"));
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
