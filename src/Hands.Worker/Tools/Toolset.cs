namespace Hands.Worker.Tools;

/// <summary>The six tools of <c>agent_toolset_20260401</c> that run in the sandbox, bound to one session's context.</summary>
public static class Toolset
{
    public static IReadOnlyList<IWorkerTool> Create(ToolContext context) =>
    [
        new BashTool(context),
        new ReadTool(context),
        new WriteTool(context),
        new EditTool(context),
        new GlobTool(context),
        new GrepTool(context),
    ];
}
