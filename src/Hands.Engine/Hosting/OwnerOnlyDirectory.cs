namespace Hands.Engine.Hosting;

/// <summary>A directory only its owner (the engine, root) may enter: made with mode 0700, or set to it if it exists.</summary>
internal static class OwnerOnlyDirectory
{
    private const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public static void Ensure(string path)
    {
        Directory.CreateDirectory(path, Mode);
        File.SetUnixFileMode(path, Mode);
    }
}
