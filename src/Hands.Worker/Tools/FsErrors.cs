namespace Hands.Worker.Tools;

/// <summary>File system errors in the official workers' words (<c>FILE: no such file or directory</c>, ...).</summary>
public static class FsErrors
{
    internal const int ELoop = 40;

    public static string Message(Exception ex, string file) => $"{file}: {Reason(ex)}";

    /// <summary>The reason text of a Linux errno.</summary>
    public static string ReasonOf(int errno) => errno switch
    {
        2 => "no such file or directory",
        13 or 1 => "permission denied",
        20 => "not a directory",
        21 => "is a directory",
        40 => "too many levels of symbolic links",
        36 => "file name too long",
        28 => "no space left on device",
        23 or 24 => "too many open files",
        _ => "i/o error",
    };

    public static string Reason(Exception ex)
    {
        if (ex is IOException { HResult: > 0 and < 200 } errnoException && ex is not FileNotFoundException)
        {
            return ReasonOf(errnoException.HResult);
        }

        switch (ex)
        {
            case FileNotFoundException or DirectoryNotFoundException:
                return "no such file or directory";
            case UnauthorizedAccessException:
                return "permission denied";
            case PathTooLongException:
                return "file name too long";
        }

        var text = ex.Message;
        if (ex.HResult == ELoop || text.Contains("symbolic links", StringComparison.OrdinalIgnoreCase))
        {
            return "too many levels of symbolic links";
        }

        if (text.Contains("Not a directory", StringComparison.OrdinalIgnoreCase))
        {
            return "not a directory";
        }

        if (text.Contains("Is a directory", StringComparison.OrdinalIgnoreCase))
        {
            return "is a directory";
        }

        if (text.Contains("No space left", StringComparison.OrdinalIgnoreCase))
        {
            return "no space left on device";
        }

        if (text.Contains("Too many open files", StringComparison.OrdinalIgnoreCase))
        {
            return "too many open files";
        }

        if (text.Contains("Permission denied", StringComparison.OrdinalIgnoreCase) || text.Contains("Read-only file system", StringComparison.OrdinalIgnoreCase))
        {
            return "permission denied";
        }

        if (text.Contains("No such file", StringComparison.OrdinalIgnoreCase) || text.Contains("Could not find", StringComparison.OrdinalIgnoreCase))
        {
            return "no such file or directory";
        }

        return "i/o error";
    }
}
