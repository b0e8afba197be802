using System.Globalization;
using System.Text;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>
/// The regular files and symlinks under a directory in a sandbox, with mode, size and modification time (one
/// <c>find</c>, written NUL-separated to a file and read back through the file API, so any name survives). Two
/// manifests of a fork tell what its branch changed: an entry counts as changed when its size, mode or mtime moved.
/// </summary>
internal static class FileManifest
{
    /// <summary>One entry: permission bits (octal), size in bytes and mtime (seconds, as <c>find</c> prints it).</summary>
    internal sealed record Entry(string Mode, long Size, string ModifiedAt);

    public static async Task<IReadOnlyDictionary<string, Entry>> ReadAsync(SandboxProxyClient sandbox, string directory, CancellationToken cancellationToken)
    {
        var listing = $"/tmp/hands-manifest-{ForkExplorer.NewRunId()}";
        // A missing directory is an empty manifest: a branch may create it.
        var result = await sandbox.RunAsync(new RunProcessRequest
        {
            Command = "sh",
            Args = ["-c", "if [ -d \"$1\" ]; then cd \"$1\" && find . -xdev \\( -type f -o -type l \\) -printf '%m\\t%s\\t%T@\\t%P\\0' > \"$0\"; else : > \"$0\"; fi", listing, directory],
            Timeout = 120,
        }, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new IOException($"could not list {directory} in the sandbox (exit {result.ExitCode}): {result.Stderr.Trim()}");
        }

        var bytes = await sandbox.ReadFileAsync(listing, cancellationToken).ConfigureAwait(false);
        await sandbox.DeleteFileAsync(listing, cancellationToken).ConfigureAwait(false);
        return Parse(Encoding.UTF8.GetString(bytes));
    }

    /// <summary>Reads <c>mode\tsize\tmtime\tpath</c> records, each ended by a NUL; malformed records are skipped.</summary>
    public static Dictionary<string, Entry> Parse(string listing)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var record in listing.Split('\0', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = record.Split('\t', 4);
            if (fields.Length == 4 && long.TryParse(fields[1], NumberStyles.None, CultureInfo.InvariantCulture, out var size) && fields[3].Length > 0)
            {
                entries[fields[3]] = new Entry(fields[0], size, fields[2]);
            }
        }

        return entries;
    }

    /// <summary>What changed from <paramref name="before"/> to <paramref name="after"/>: new or changed paths, and removed ones.</summary>
    public static (IReadOnlyList<string> Changed, IReadOnlyList<string> Deleted) Diff(IReadOnlyDictionary<string, Entry> before, IReadOnlyDictionary<string, Entry> after)
    {
        var changed = after.Where(kv => !before.TryGetValue(kv.Key, out var old) || old != kv.Value).Select(kv => kv.Key).Order(StringComparer.Ordinal).ToList();
        var deleted = before.Keys.Where(path => !after.ContainsKey(path)).Order(StringComparer.Ordinal).ToList();
        return (changed, deleted);
    }
}
