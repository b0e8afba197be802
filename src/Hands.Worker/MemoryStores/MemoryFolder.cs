using System.Security.Cryptography;
using System.Text;
using Hands.Worker.Tools;

namespace Hands.Worker.MemoryStores;

/// <summary>A file the memory folder refuses: outside the root, a symlink, not a regular file, or not UTF-8.</summary>
internal sealed class MemoryFileException : Exception
{
    public MemoryFileException() { }

    public MemoryFileException(string message) : base(message) { }

    public MemoryFileException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// One memory store's folder on disk, as the official worker's file store keeps it: regular files only (symlinks are
/// skipped by listings and refused by reads), paths confined to the root, writes atomic (a temp file renamed over the
/// target), directories 0700 and files 0600 — 0400 in a read-only store, so the store's files are read-only on disk
/// too. The root is removed on dispose only when opening found nothing there.
/// </summary>
internal sealed class MemoryFolder
{
    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private const UnixFileMode RwMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode RoMode = UnixFileMode.UserRead;
    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    private MemoryFolder(string root, bool createdByUs, bool readOnly)
    {
        Root = root;
        CreatedByUs = createdByUs;
        ReadOnly = readOnly;
    }

    /// <summary>The root, absolute.</summary>
    public string Root { get; }

    /// <summary>True when nothing was at the root when it was opened: dispose then removes it.</summary>
    public bool CreatedByUs { get; }

    public bool ReadOnly { get; }

    /// <summary>Resolves <paramref name="root"/>; creates nothing.</summary>
    public static MemoryFolder Open(string root, bool readOnly)
    {
        var full = Path.GetFullPath(root);
        var exists = File.Exists(full) || Directory.Exists(full) || new FileInfo(full).LinkTarget is not null;
        return new MemoryFolder(full, !exists, readOnly);
    }

    /// <summary>Creates the root and its missing ancestors (0700 each).</summary>
    public void CreateRoot() => Directory.CreateDirectory(Root, DirMode);

    /// <summary>Removes the root if <see cref="Open"/> found nothing there.</summary>
    public void Dispose()
    {
        if (CreatedByUs && Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }

    /// <summary>Writes <paramref name="content"/> (UTF-8) atomically at <paramref name="rel"/>; missing directories below the root are created, a missing root is not.</summary>
    public void Put(string rel, string content)
    {
        var dest = Resolve(rel);
        if (dest == Root || rel.EndsWith('/'))
        {
            throw new MemoryFileException($"{rel}: not a file");
        }

        if (!Directory.Exists(Root))
        {
            throw new DirectoryNotFoundException($"the memory store folder {Root} is gone");
        }

        var dir = Path.GetDirectoryName(dest)!;
        var current = Root;
        foreach (var part in Path.GetRelativePath(Root, dir).Split('/'))
        {
            if (part is "." or "")
            {
                continue;
            }

            current = Path.Combine(current, part);
            if (new DirectoryInfo(current).LinkTarget is not null)
            {
                throw new MemoryFileException($"{rel}: a directory on its path is a symlink");
            }

            if (!Directory.Exists(current))
            {
                Directory.CreateDirectory(current, DirMode);
            }
        }

        var temp = Path.Combine(dir, $".fs-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = ReadOnly ? RoMode : RwMode,
            }))
            {
                stream.Write(Encoding.UTF8.GetBytes(content));
            }

            File.Move(temp, dest, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }

    /// <summary>The file's text; null when absent. Refuses symlinks, non-regular files and content that is not UTF-8 (a leading BOM is dropped).</summary>
    public string? Get(string rel)
    {
        var path = Resolve(rel);
        var info = new FileInfo(path);
        if (info.LinkTarget is not null)
        {
            throw new MemoryFileException($"{rel}: is a symlink");
        }

        if (!info.Exists)
        {
            return null;
        }

        if (UnixFiles.KindOf(path) != UnixFiles.Kind.Regular)
        {
            throw new MemoryFileException($"{rel}: not a regular file");
        }

        var bytes = File.ReadAllBytes(path);
        try
        {
            var text = StrictUtf8.GetString(bytes);
            return text.Length > 0 && text[0] == '\uFEFF' ? text[1..] : text;
        }
        catch (DecoderFallbackException)
        {
            throw new MemoryFileException($"{rel}: is not valid UTF-8");
        }
    }

    /// <summary><c>{rel: sha256}</c> of every regular file under the root; symlinks are neither listed nor descended.</summary>
    public Dictionary<string, string> HashTree()
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(Root) || new DirectoryInfo(Root).LinkTarget is not null)
        {
            return result;
        }

        var stack = new Stack<string>();
        stack.Push(Root);
        while (stack.Count > 0)
        {
            var dir = stack.Pop();
            IEnumerable<FileSystemInfo> entries;
            try
            {
                entries = new DirectoryInfo(dir).EnumerateFileSystemInfos().ToList();
            }
            catch (DirectoryNotFoundException)
            {
                continue;
            }

            foreach (var entry in entries)
            {
                if (entry.LinkTarget is not null)
                {
                    continue;
                }

                if (entry is DirectoryInfo)
                {
                    stack.Push(entry.FullName);
                }
                else if (HashOf(entry.FullName) is { } sha)
                {
                    result[Path.GetRelativePath(Root, entry.FullName)] = sha;
                }
            }
        }

        return result;
    }

    /// <summary>One file's sha256; null when absent. Refuses a symlink.</summary>
    public string? HashFile(string rel)
    {
        var path = Resolve(rel);
        if (new FileInfo(path).LinkTarget is not null)
        {
            throw new MemoryFileException($"{rel}: is a symlink");
        }

        return HashOf(path);
    }

    /// <summary>Deletes a file or subtree; absent does nothing.</summary>
    public void Remove(string rel)
    {
        var path = Resolve(rel);
        if (path == Root)
        {
            return;
        }

        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null)
        {
            Directory.Delete(path, recursive: true);
        }
        else
        {
            File.Delete(path);
        }
    }

    private static string? HashOf(string path)
    {
        try
        {
            if (UnixFiles.KindOf(path) != UnixFiles.Kind.Regular)
            {
                return null;
            }

            using var stream = File.OpenRead(path);
            return Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The absolute path of <paramref name="rel"/> (a leading '/' also means the root); refuses any '..' component.</summary>
    private string Resolve(string rel)
    {
        var parts = rel.Replace('\\', '/').TrimStart('/').Split('/').Where(p => p is not ("" or ".")).ToList();
        if (parts.Contains(".."))
        {
            throw new MemoryFileException($"{rel}: escapes the memory store folder");
        }

        return parts.Count == 0 ? Root : Path.Combine([Root, .. parts]);
    }
}
