using System.Text.Json;

namespace Hands.Worker.Tools;

/// <summary>
/// Confines file tool paths to the workdir after resolving every symlink, the leaf included (a dangling link is
/// followed too), so a link cannot point a tool outside. Messages match the official TypeScript worker:
/// <c>path "x" is outside the session's working directory</c>. With unrestricted paths (the <c>ant</c> and Python
/// workers' <c>--unrestricted-paths</c>) absolute paths are taken as given; relative ones still resolve against the workdir.
/// </summary>
public sealed class PathPolicy(string workdir, bool unrestricted)
{
    private const int MaxSymlinkHops = 40;

    /// <summary>Resolves <paramref name="path"/> to the canonical absolute path a tool operates on, or throws <see cref="ToolError"/>.</summary>
    public string Resolve(string path)
    {
        var root = Canonicalize(workdir);
        string real;
        try
        {
            real = Canonicalize(Path.GetFullPath(path, root));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ToolError(FsErrors.Message(ex, "path " + Quote(path)));
        }

        if (unrestricted || IsWithin(root, real) || AllowedRoots.Any(r => IsWithin(Canonicalize(Path.GetFullPath(r)), real)))
        {
            return real;
        }

        var permitted = AllowedRoots.Count > 0 ? "the session's working directory and its other permitted directories" : "the session's working directory";
        throw new ToolError($"path {Quote(path)} is outside {permitted}");
    }

    /// <summary>Directories outside the workdir the file tools may also use (the session's memory store folders).</summary>
    public List<string> AllowedRoots { get; } = [];

    /// <summary>Directories <c>write</c> and <c>edit</c> refuse (read-only memory stores), as configured.</summary>
    public List<string> ReadOnlyRoots { get; } = [];

    /// <summary>The read-only root (as configured) the canonical <paramref name="resolved"/> path is inside, or null.</summary>
    public string? ReadOnlyRootFor(string resolved)
    {
        foreach (var root in ReadOnlyRoots)
        {
            if (IsWithin(Canonicalize(Path.GetFullPath(root)), resolved))
            {
                return root;
            }
        }

        return null;
    }

    /// <summary>Throws the official worker's refusal when <paramref name="resolved"/> is inside a read-only root.</summary>
    public void RequireWritable(string tool, string filePath, string resolved)
    {
        if (ReadOnlyRootFor(resolved) is { } root)
        {
            throw new ToolError($"{tool}: {filePath} is inside read-only directory {root}");
        }
    }

    /// <summary>The canonical form of the workdir itself.</summary>
    public string Root => Canonicalize(workdir);

    public static bool IsWithin(string root, string candidate)
    {
        var r = root.TrimEnd('/');
        return candidate == r || candidate.StartsWith(r + "/", StringComparison.Ordinal) || r.Length == 0;
    }

    /// <summary>
    /// realpath(3) that tolerates a missing tail: resolves every existing component (following symlinks, dangling
    /// ones included), then appends the components that do not exist yet.
    /// </summary>
    public static string Canonicalize(string absolute)
    {
        var pending = new Stack<string>(absolute.Split('/', StringSplitOptions.RemoveEmptyEntries).Reverse());
        var resolved = "/";
        var hops = 0;
        while (pending.Count > 0)
        {
            var part = pending.Pop();
            if (part == ".")
            {
                continue;
            }

            if (part == "..")
            {
                resolved = Path.GetDirectoryName(resolved) ?? "/";
                continue;
            }

            var next = resolved == "/" ? "/" + part : resolved + "/" + part;
            FileSystemInfo info = new FileInfo(next);
            if (!info.Exists && Directory.Exists(next))
            {
                info = new DirectoryInfo(next);
            }

            string? target = null;
            try
            {
                target = info.LinkTarget;
            }
            catch (IOException)
            {
                // not a link, or a parent is not a directory: treat as a plain component
            }

            if (target is null)
            {
                resolved = next;
                continue;
            }

            if (++hops > MaxSymlinkHops)
            {
                throw new IOException("too many levels of symbolic links", FsErrors.ELoop);
            }

            var targetParts = target.Split('/', StringSplitOptions.RemoveEmptyEntries);
            for (var i = targetParts.Length - 1; i >= 0; i--)
            {
                pending.Push(targetParts[i]);
            }

            if (target.StartsWith('/'))
            {
                resolved = "/";
            }
        }

        return resolved;
    }

    /// <summary>JSON-quotes a path as the TypeScript worker's messages do.</summary>
    public static string Quote(string path) => JsonSerializer.Serialize(path, Hands.Protocol.Json.ProtocolJsonContext.Default.String);
}
