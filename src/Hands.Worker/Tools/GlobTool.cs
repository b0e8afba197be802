using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>glob</c> tool: files under the root (<c>path</c>, or the workdir) matching a relative doublestar pattern,
/// newest modification first, at most 200, one absolute path per line; <c>.git</c> and <c>node_modules</c> skipped;
/// matches whose real path leaves the root dropped; the walk stops after 50,000 entries. Texts match the official
/// TypeScript worker (which needs Node 22 for this tool).
/// </summary>
public sealed class GlobTool(ToolContext context) : IWorkerTool
{
    public const int ResultLimit = 200;
    public const int WalkLimit = 50_000;

    public string Name => "glob";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>glob</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Match files under the workdir against a glob pattern. Results are mtime-sorted, newest first.";

    public Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var pattern = ToolInput.String(input, "glob", "pattern");
        if (string.IsNullOrEmpty(pattern))
        {
            throw new ToolError("glob: pattern is required");
        }

        if (pattern.StartsWith('/'))
        {
            throw new ToolError("glob: absolute pattern not permitted; pass a relative pattern (and optionally path)");
        }

        if (pattern.Split('/', '\\', '{', '}', ',').Contains(".."))
        {
            throw new ToolError("glob: \"..\" is not permitted in the pattern");
        }

        var searchPath = ToolInput.String(input, "glob", "path");
        var root = string.IsNullOrEmpty(searchPath) ? context.Workdir : context.Paths.Resolve(searchPath);
        var realRoot = PathPolicy.Canonicalize(root);
        var regex = GlobPattern.ToRegex(pattern);
        var matches = new List<(string Path, DateTime Mtime)>();
        var remaining = WalkLimit;
        var stack = new Stack<string>();
        stack.Push(root);
        try
        {
            while (stack.Count > 0 && remaining > 0)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var dir = stack.Pop();
                IEnumerable<FileSystemInfo> entries;
                try
                {
                    entries = new DirectoryInfo(dir).EnumerateFileSystemInfos();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    continue;
                }

                foreach (var entry in entries)
                {
                    if (remaining-- <= 0)
                    {
                        break;
                    }

                    if (entry is DirectoryInfo d)
                    {
                        if (d.Name is ".git" or "node_modules" || d.LinkTarget is not null)
                        {
                            continue;
                        }

                        stack.Push(d.FullName);
                        continue;
                    }

                    var relative = Path.GetRelativePath(root, entry.FullName);
                    if (!regex.IsMatch(relative))
                    {
                        continue;
                    }

                    if (UnixFilesSafe.KindOf(entry.FullName) != UnixFiles.Kind.Regular)
                    {
                        continue;
                    }

                    var real = PathPolicy.Canonicalize(entry.FullName);
                    if (!PathPolicy.IsWithin(realRoot, real))
                    {
                        continue;
                    }

                    matches.Add((entry.FullName, File.GetLastWriteTimeUtc(entry.FullName)));
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError("glob: " + ex.Message);
        }

        if (matches.Count == 0)
        {
            return Task.FromResult(ToolOutput.Text("no matches"));
        }

        var lines = matches.OrderByDescending(m => m.Mtime).Take(ResultLimit).Select(m => m.Path);
        return Task.FromResult(ToolOutput.Text(string.Join('\n', lines)));
    }
}

/// <summary><see cref="UnixFiles.KindOf"/> that answers Missing instead of throwing.</summary>
internal static class UnixFilesSafe
{
    public static UnixFiles.Kind KindOf(string path)
    {
        try
        {
            return UnixFiles.KindOf(path);
        }
        catch (IOException)
        {
            return UnixFiles.Kind.Missing;
        }
    }
}
