using System.Globalization;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>
/// The regular files under a directory in a sandbox, with mode, size and modification time (one <c>find</c>). Two
/// manifests of a fork tell what its branch changed: a file counts as changed when its size, mode or mtime moved.
/// Names holding a tab or a newline are not tracked.
/// </summary>
internal static class FileManifest
{
    /// <summary>One file: permission bits (octal), size in bytes and mtime (seconds, as <c>find</c> prints it).</summary>
    internal sealed record Entry(string Mode, long Size, string ModifiedAt);

    public static async Task<IReadOnlyDictionary<string, Entry>> ReadAsync(SandboxProxyClient sandbox, string directory, CancellationToken cancellationToken)
    {
        // A missing directory is an empty manifest: a branch may create it.
        var result = await sandbox.RunAsync(new RunProcessRequest
        {
            Command = "sh",
            Args = ["-c", "if [ -d \"$1\" ]; then cd \"$1\" && find . -xdev -type f -printf '%m\\t%s\\t%T@\\t%P\\n'; fi", "manifest", directory],
            Timeout = 120,
        }, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new IOException($"could not list {directory} in the sandbox (exit {result.ExitCode}): {result.Stderr.Trim()}");
        }

        return Parse(result.Stdout);
    }

    public static Dictionary<string, Entry> Parse(string listing)
    {
        var entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var line in listing.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            var fields = line.Split('\t');
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
