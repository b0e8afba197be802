namespace Hands.Forking;

/// <summary>
/// The custom tool <c>fork_explore</c> that hands-worker serves when it holds a fork key: declare it on the agent with
/// this name, description and input schema.
/// </summary>
public static class ForkExploreToolDefinition
{
    public const string Name = "fork_explore";

    public const string Description =
        "Fork this sandbox from one checkpoint into one child per branch, run each branch's shell command in its child, "
        + "and report every branch (state, exit code, elapsed, output tail) and the winner: the passing branch (exit 0) "
        + "that ran fastest. With adopt, the winner's changed files under workdir are copied back here.";

    /// <summary>The input schema (JSON).</summary>
    public const string InputSchema = """
        {"type":"object","required":["branches"],"properties":{
          "branches":{"type":"array","minItems":1,"items":{"type":"object","required":["name","command"],"properties":{
            "name":{"type":"string"},"command":{"type":"string"},"env":{"type":"object","additionalProperties":{"type":"string"}}}}},
          "snapshot_type":{"type":"string","enum":["filesystem","memory"]},
          "parallel":{"type":"integer","minimum":1},
          "timeout_seconds":{"type":"number"},
          "workdir":{"type":"string"},
          "adopt":{"type":"boolean"}}}
        """;
}
