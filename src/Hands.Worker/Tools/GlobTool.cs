using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>glob</c> tool, as the official TypeScript worker runs it on Node 22's <c>fs.glob</c>: regular files under the
/// root (<c>path</c>, or the workdir) matching a relative pattern (<see cref="GlobPattern"/>: names starting with
/// <c>.</c> only where the pattern segment starts with one, and <c>**</c> does not enter such directories), newest
/// modification first (ties in path order), at most 200, one absolute path per line; <c>node_modules</c> never
/// entered, <c>.git</c> not through <c>**</c>; a symbolic link is never a result, and a linked directory is entered only where
/// the pattern names it literally (<c>link/*</c>), never by <c>*</c> or <c>**</c>; matches whose real path leaves the
/// root dropped; the walk stops after 50,000 matched entries (files or not), as Node's does.
/// </summary>
public sealed class GlobTool(ToolContext context) : IWorkerTool
{
    public const int ResultLimit = 200;

    /// <summary>Entries matched (of any type) before the walk stops: the TypeScript worker's <c>WALK_MAX_ENTRIES</c>.</summary>
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
        var root = Path.TrimEndingDirectorySeparator(string.IsNullOrEmpty(searchPath) ? context.Workdir : context.Paths.Resolve(searchPath));
        var walk = new Walk(PathPolicy.Canonicalize(root), cancellationToken);
        foreach (var expansion in GlobPattern.Parse(pattern))
        {
            if (!expansion.Rooted)
            {
                walk.Match(root, expansion.Segments, 0);
            }
        }

        if (walk.Matches.Count == 0)
        {
            return Task.FromResult(ToolOutput.Text("no matches"));
        }

        var lines = walk.Matches
            .OrderByDescending(m => m.Value)
            .ThenBy(m => m.Key, StringComparer.Ordinal)
            .Take(ResultLimit)
            .Select(m => m.Key);
        return Task.FromResult(ToolOutput.Text(string.Join('\n', lines)));
    }

    /// <summary>One call's walk: the files found (path → mtime), and what is left of the match budget.</summary>
    private sealed class Walk(string realRoot, CancellationToken cancellationToken)
    {
        private int _remaining = WalkLimit;

        public Dictionary<string, DateTime> Matches { get; } = new(StringComparer.Ordinal);

        /// <summary>
        /// Matches <paramref name="segments"/> from <paramref name="index"/> on, inside the directory <paramref name="dir"/>;
        /// <paramref name="afterGlobstar"/> when that segment follows a <c>**</c> directly (there <c>.git</c> is not entered either).
        /// </summary>
        public void Match(string dir, IReadOnlyList<GlobPattern.Segment> segments, int index, bool afterGlobstar = false)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (_remaining <= 0)
            {
                return;
            }

            var segment = segments[index];
            var last = index == segments.Count - 1;
            if (segment.IsGlobstar)
            {
                // Zero directories, then each real, non-hidden subdirectory in turn; a final "**" matches every entry below.
                if (!last)
                {
                    Match(dir, segments, index + 1, afterGlobstar: true);
                }

                foreach (var entry in Entries(dir))
                {
                    if (entry.Name.StartsWith('.'))
                    {
                        continue;
                    }

                    if (last)
                    {
                        Found(entry);
                    }

                    if (entry is DirectoryInfo { LinkTarget: null } sub && !Excluded(sub.Name, afterGlobstar: true))
                    {
                        Match(sub.FullName, segments, index);
                    }
                }

                return;
            }

            if (segment.Regex is null)
            {
                // A literal name is looked up, not listed: a linked directory it names is entered (its real path is checked at the end).
                var path = Path.Combine(dir, segment.Text);
                if (last)
                {
                    if (Path.Exists(path))
                    {
                        Found(new FileInfo(path));
                    }
                }
                else if (!Excluded(segment.Text, afterGlobstar) && Directory.Exists(path))
                {
                    Match(path, segments, index + 1);
                }

                return;
            }

            foreach (var entry in Entries(dir))
            {
                if (!segment.Matches(entry.Name))
                {
                    continue;
                }

                if (last)
                {
                    Found(entry);
                }
                else if (entry is DirectoryInfo { LinkTarget: null } sub && !Excluded(sub.Name, afterGlobstar))
                {
                    Match(sub.FullName, segments, index + 1);
                }
            }
        }

        /// <summary>
        /// Directories not entered, as the TypeScript worker's <c>exclude</c> works out on Node 22 (measured side by side):
        /// <c>node_modules</c> never; <c>.git</c> only where a <c>**</c> leads to it (<c>**/.git/*</c> matches nothing),
        /// while a pattern that names it (<c>.git/*</c>, <c>sub/.git/*</c>) or reaches it with <c>.*</c> lists it.
        /// </summary>
        private static bool Excluded(string name, bool afterGlobstar) => name == "node_modules" || (afterGlobstar && name == ".git");

        private static List<FileSystemInfo> Entries(string dir)
        {
            try
            {
                return new DirectoryInfo(dir).EnumerateFileSystemInfos().ToList();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return [];
            }
        }

        /// <summary>An entry the whole pattern matched: it counts against the budget; a regular file inside the root is kept.</summary>
        private void Found(FileSystemInfo entry)
        {
            if (_remaining-- <= 0 || Matches.ContainsKey(entry.FullName))
            {
                return;
            }

            if (entry.LinkTarget is not null || UnixFilesSafe.KindOf(entry.FullName) != UnixFiles.Kind.Regular)
            {
                return;
            }

            var real = PathPolicy.Canonicalize(entry.FullName);
            if (PathPolicy.IsWithin(realRoot, real))
            {
                Matches[entry.FullName] = File.GetLastWriteTimeUtc(entry.FullName);
            }
        }
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
