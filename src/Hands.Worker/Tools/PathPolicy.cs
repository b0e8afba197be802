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

        if (unrestricted || IsWithin(root, real))
        {
            return real;
        }

        throw new ToolError($"path {Quote(path)} is outside the session's working directory");
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
