using System.Text.Json;
using Hands.Protocol.Models;

namespace Hands.Worker.Tools;

/// <summary>
/// A tool the worker serves: a built-in one (<c>bash</c>, <c>read</c>, ...) answering <c>agent.tool_use</c>, or a custom
/// one answering <c>agent.custom_tool_use</c>. Implement it to embed your own tools (see <see cref="Runner.EnvironmentWorker"/>).
/// Throw <see cref="ToolError"/> for an error result; any other exception becomes <c>Error: message</c>.
/// </summary>
public interface IWorkerTool
{
    /// <summary>The name the agent calls it by.</summary>
    string Name { get; }

    /// <summary>True for built-in toolset tools (answered with <c>user.tool_result</c>), false for custom tools.</summary>
    bool IsBuiltIn { get; }

    /// <summary>
    /// What the tool does, in one line: the tool span's <c>gen_ai.tool.description</c> (not content, so recorded in
    /// every mode). Null when there is none.
    /// </summary>
    string? Description => null;

    /// <summary>Runs one call. <paramref name="cancellationToken"/> fires on timeout or shutdown.</summary>
    Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken);
}

/// <summary>What a tool call returns: content blocks and whether it is an error.</summary>
public sealed record ToolOutput(IReadOnlyList<ContentBlock> Content, bool IsError = false)
{
    public static ToolOutput Text(string text, bool isError = false) => new([ContentBlock.FromText(text)], isError);
}

/// <summary>A tool's error, returned to the agent as <c>is_error: true</c> with exactly this text.</summary>
public sealed class ToolError : Exception
{
    public ToolError() { }

    public ToolError(string message) : base(message) { }

    public ToolError(string message, Exception innerException) : base(message, innerException) { }
}
