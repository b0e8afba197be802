using System.Text;

namespace Hands.Worker.Tools;

/// <summary>Writes a file atomically: a temp file beside it (mode 0600, or the existing file's mode), fsync, rename.</summary>
internal static class AtomicFile
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    public static async Task WriteAsync(string target, string content, CancellationToken ct)
    {
        var dir = Path.GetDirectoryName(target)!;
        var temp = Path.Combine(dir, $".tmp-{Environment.ProcessId}-{Guid.NewGuid()}");
        UnixFileMode? existing = File.Exists(target) ? File.GetUnixFileMode(target) : null;
        try
        {
            var options = new FileStreamOptions
            {
                Mode = System.IO.FileMode.CreateNew,
                Access = FileAccess.Write,
                UnixCreateMode = existing ?? FileMode,
            };
            await using (var stream = new FileStream(temp, options))
            {
                var bytes = new UTF8Encoding(false).GetBytes(content);
                await stream.WriteAsync(bytes, ct);
                await stream.FlushAsync(ct);
                stream.Flush(flushToDisk: true);
            }

            if (existing is { } mode)
            {
                File.SetUnixFileMode(temp, mode);
            }

            File.Move(temp, target, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(temp);
            }
            catch (IOException)
            {
            }

            throw;
        }
    }
}
