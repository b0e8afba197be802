using System.Text;
using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>read</c> tool: a UTF-8 text file, whole or <c>view_range [start, end]</c> (1-based, inclusive, end ≤ 0 =
/// to the end). Files over the cap (256 KiB) are refused unless a range is given, which is then read streaming and
/// capped on the selected bytes. Texts match the official TypeScript worker.
/// </summary>
public sealed class ReadTool(ToolContext context) : IWorkerTool
{
    public string Name => "read";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>read</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Read a UTF-8 text file relative to the workdir.";

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var filePath = ToolInput.String(input, "read", "file_path");
        if (string.IsNullOrEmpty(filePath))
        {
            throw new ToolError("read: file_path is required");
        }

        var abs = context.Paths.Resolve(filePath);
        var range = ToolInput.IntegerList(input, "read", "view_range");
        if (range is { Length: > 0 and not 2 })
        {
            throw new ToolError("read: view_range must be [start_line, end_line]");
        }

        var hasRange = range is { Length: 2 };
        string data;
        try
        {
            switch (UnixFiles.KindOf(abs))
            {
                case UnixFiles.Kind.Directory or UnixFiles.Kind.Other:
                    throw new ToolError($"read: {filePath} is not a regular file");
            }

            var info = new FileInfo(abs);

            if (context.MaxFileBytes is { } limit && info.Length > limit)
            {
                if (!hasRange)
                {
                    throw new ToolError($"read: {filePath} is {info.Length} bytes, exceeds {limit}-byte limit. " +
                        "Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500].");
                }

                return ToolOutput.Text(await ReadRangeStreamingAsync(abs, filePath, range![0], range[1], limit, cancellationToken));
            }

            data = await File.ReadAllTextAsync(abs, new UTF8Encoding(false), cancellationToken);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError("read: " + FsErrors.Message(ex, filePath));
        }

        if (!hasRange)
        {
            return ToolOutput.Text(data);
        }

        var lines = data.Split('\n');
        var start = (int)Math.Max(0, range![0] - 1);
        var end = range[1] > 0 ? (int)Math.Min(range[1], lines.Length) : lines.Length;
        return ToolOutput.Text(start >= end ? "" : string.Join('\n', lines[start..end]));
    }

    private static async Task<string> ReadRangeStreamingAsync(string abs, string filePath, long startLine, long endLine, long limit, CancellationToken ct)
    {
        var start = Math.Max(0, startLine - 1);
        var end = endLine > 0 ? endLine : long.MaxValue;
        if (end <= start)
        {
            return "";
        }

        using var collected = new MemoryStream();
        long line = 0;
        var buffer = new byte[64 * 1024];
        await using var stream = new FileStream(abs, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1, useAsync: true);
        int n;
        while (line < end && (n = await stream.ReadAsync(buffer, ct)) > 0)
        {
            var pos = 0;
            while (pos < n && line < end)
            {
                var newline = Array.IndexOf(buffer, (byte)'\n', pos, n - pos);
                var lineEnd = newline < 0 ? n : newline;
                if (line >= start)
                {
                    collected.Write(buffer, pos, lineEnd - pos);
                    if (newline >= 0 && line + 1 < end)
                    {
                        collected.WriteByte((byte)'\n');
                    }

                    if (collected.Length > limit)
                    {
                        throw end - start == 1
                            ? new ToolError($"read: line {start + 1} of {filePath} alone exceeds {limit}-byte limit. " +
                                "The read tool cannot return part of a line, so view_range cannot narrow this further.")
                            : new ToolError($"read: view_range [{startLine}, {endLine}] of {filePath} exceeds {limit}-byte limit. " +
                                "Narrow the view_range to read a smaller portion.");
                    }
                }

                if (newline < 0)
                {
                    break;
                }

                line++;
                pos = newline + 1;
            }
        }

        return Encoding.UTF8.GetString(collected.GetBuffer(), 0, (int)collected.Length);
    }
}
