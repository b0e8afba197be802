namespace Hands.Engine.Api;

/// <summary>Writes a secret the engine keeps in its data directory: owner-only from the first byte, whole or not at all.</summary>
internal static class SecretFile
{
    /// <summary>Writes <paramref name="content"/> to a 0600 partial file, flushes it to disk, then renames it over <paramref name="path"/>.</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> content)
    {
        var partial = path + ".partial";
        using (var stream = new FileStream(partial, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
        }

        File.Move(partial, path, overwrite: true);
    }
}
