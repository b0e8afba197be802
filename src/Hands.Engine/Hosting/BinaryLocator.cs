namespace Hands.Engine.Hosting;

/// <summary>
/// Finds the native binaries that ship with <c>hands</c> (<c>hands-sandboxd</c>, <c>hands-worker</c>, <c>hands-receiver</c>)
/// when neither a flag nor a variable names them: beside the running program (an installed release keeps them all in one directory,
/// <c>scripts/install.sh</c>), then in the <c>artifacts/</c> of the source tree it was built in (what
/// <c>scripts/lib/prerequisites.sh</c>'s <c>publish_binaries</c> makes), so a clone works with no variable either.
/// </summary>
public static class BinaryLocator
{
    /// <summary>The directories searched for <paramref name="fileName"/>, in order: the program's own (symbolic links resolved), then the source tree's <c>artifacts/{fileName}</c>.</summary>
    public static IReadOnlyList<string> Directories(string fileName)
    {
        var directories = new List<string>();
        void Add(string? directory)
        {
            if (!string.IsNullOrEmpty(directory) && !directories.Contains(directory, StringComparer.Ordinal))
            {
                directories.Add(directory);
            }
        }

        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        Add(baseDirectory);
        if (Environment.ProcessPath is { } process && Path.GetFileNameWithoutExtension(process) != "dotnet")
        {
            Add(Path.GetDirectoryName(ResolveLinks(process)));
        }

        for (var directory = new DirectoryInfo(baseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Hands.slnx")))
            {
                Add(Path.Combine(directory.FullName, "artifacts", fileName));
                break;
            }
        }

        return directories;
    }

    /// <summary>The first <paramref name="fileName"/> found in <see cref="Directories"/>, or null.</summary>
    public static string? Find(string fileName) =>
        Directories(fileName).Select(d => Path.Combine(d, fileName)).FirstOrDefault(File.Exists);

    private static string ResolveLinks(string path)
    {
        try
        {
            return new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path;
        }
        catch (IOException)
        {
            return path;
        }
    }
}
