using System.Text;
using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>edit</c> tool: literal replacement of <c>old_string</c>, which must occur exactly once unless
/// <c>replace_all</c>; same size cap as <c>read</c>; written atomically. Texts match the official TypeScript worker.
/// </summary>
public sealed class EditTool(ToolContext context) : IWorkerTool
{
    public string Name => "edit";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>edit</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Replace old_string with new_string in a file. old_string must be unique unless replace_all.";

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var filePath = ToolInput.String(input, "edit", "file_path");
        if (string.IsNullOrEmpty(filePath))
        {
            throw new ToolError("edit: file_path is required");
        }

        var oldString = ToolInput.String(input, "edit", "old_string");
        if (string.IsNullOrEmpty(oldString))
        {
            throw new ToolError("edit: old_string is required");
        }

        var newString = ToolInput.String(input, "edit", "new_string") ?? "";
        var replaceAll = ToolInput.Bool(input, "edit", "replace_all");
        var abs = context.Paths.Resolve(filePath);
        context.Paths.RequireWritable("edit", filePath, abs);
        string data;
        try
        {
            switch (UnixFiles.KindOf(abs))
            {
                case UnixFiles.Kind.Directory or UnixFiles.Kind.Other:
                    throw new ToolError($"edit: {filePath} is not a regular file");
            }

            var info = new FileInfo(abs);

            if (context.MaxFileBytes is { } limit && info.Length > limit)
            {
                throw new ToolError($"edit: {filePath} is {info.Length} bytes, exceeds {limit}-byte limit. " +
                    "The edit tool loads the whole file and cannot modify a file this large.");
            }

            data = await File.ReadAllTextAsync(abs, new UTF8Encoding(false), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError("edit: " + FsErrors.Message(ex, filePath));
        }

        var count = Count(data, oldString);
        if (count == 0)
        {
            throw new ToolError($"edit: old_string not found in {filePath}");
        }

        string updated;
        if (replaceAll)
        {
            updated = data.Replace(oldString, newString, StringComparison.Ordinal);
        }
        else
        {
            if (count > 1)
            {
                throw new ToolError($"edit: old_string appears {count} times in {filePath} (must be unique)");
            }

            var at = data.IndexOf(oldString, StringComparison.Ordinal);
            updated = string.Concat(data.AsSpan(0, at), newString, data.AsSpan(at + oldString.Length));
        }

        try
        {
            await AtomicFile.WriteAsync(abs, updated, cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError("edit: write: " + FsErrors.Message(ex, filePath));
        }

        return ToolOutput.Text($"edited {filePath} ({(replaceAll ? count : 1)} replacement(s))");
    }

    /// <summary>Non-overlapping occurrences, as <c>split(old).length - 1</c> counts them.</summary>
    internal static int Count(string text, string value)
    {
        var count = 0;
        for (var i = text.IndexOf(value, StringComparison.Ordinal); i >= 0; i = text.IndexOf(value, i + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
