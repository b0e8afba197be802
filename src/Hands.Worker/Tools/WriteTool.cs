using System.Text;
using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>The <c>write</c> tool: creates parent directories (0700), writes atomically, answers <c>wrote N bytes to PATH</c> (N in UTF-8 bytes).</summary>
public sealed class WriteTool(ToolContext context) : IWorkerTool
{
    public string Name => "write";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>write</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Write a UTF-8 text file relative to the workdir, creating parent directories as needed.";

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var filePath = ToolInput.String(input, "write", "file_path");
        if (string.IsNullOrEmpty(filePath))
        {
            throw new ToolError("write: file_path is required");
        }

        var content = ToolInput.String(input, "write", "content") ?? "";
        var abs = context.Paths.Resolve(filePath);
        context.Paths.RequireWritable("write", filePath, abs);
        try
        {
            if (Directory.Exists(abs))
            {
                throw new IOException("Is a directory");
            }

            var parent = Path.GetDirectoryName(abs)!;
            if (File.Exists(parent))
            {
                throw new IOException("Not a directory");
            }

            Directory.CreateDirectory(parent, AtomicFile.DirectoryMode);
            await AtomicFile.WriteAsync(abs, content, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError("write: " + FsErrors.Message(ex, filePath));
        }

        return ToolOutput.Text($"wrote {Encoding.UTF8.GetByteCount(content)} bytes to {filePath}");
    }
}
