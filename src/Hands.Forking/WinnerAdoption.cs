using System.Text;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>
/// Brings a winning branch's work home: the files and symlinks it created or changed under the adopt directory are
/// packed with <c>tar</c> in the child (modes and times kept), unpacked over the parent's tree, and the ones it removed
/// are removed from the parent. The parent's other files, and anything outside the directory, are left alone.
/// </summary>
internal static class WinnerAdoption
{
    public static async Task<AdoptReport> AdoptAsync(TensorlakeClient sandboxes, string winnerId, SandboxInfo parent, string directory,
        IReadOnlyDictionary<string, FileManifest.Entry> baseline, CancellationToken cancellationToken)
    {
        var winner = sandboxes.Proxy(await sandboxes.GetAsync(winnerId, cancellationToken).ConfigureAwait(false));
        var home = sandboxes.Proxy(await sandboxes.GetAsync(parent.CanonicalId, cancellationToken).ConfigureAwait(false));
        var after = await FileManifest.ReadAsync(winner, directory, cancellationToken).ConfigureAwait(false);
        var (changed, deleted) = FileManifest.Diff(baseline, after);
        var run = ForkExplorer.NewRunId();
        var archive = $"/tmp/hands-adopt-{run}.tar";
        var list = $"/tmp/hands-adopt-{run}.list";
        // Path lists travel as NUL-separated files, not arguments: thousands of changed files fit, and any name does.
        if (changed.Count > 0)
        {
            await winner.WriteFileAsync(list, NulSeparated(changed), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(winner, "pack the changed files", ["-c", "cd \"$1\" && tar -cf \"$0\" --null --verbatim-files-from --no-recursion -T \"$2\"", archive, directory, list], cancellationToken).ConfigureAwait(false);
            var bytes = await winner.ReadFileAsync(archive, cancellationToken).ConfigureAwait(false);
            await winner.DeleteFileAsync(archive, cancellationToken).ConfigureAwait(false);
            await winner.DeleteFileAsync(list, cancellationToken).ConfigureAwait(false);
            await home.WriteFileAsync(archive, bytes, cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(home, "unpack the changed files", ["-c", "mkdir -p \"$1\" && tar -xpf \"$0\" -C \"$1\"; status=$?; rm -f \"$0\"; exit $status", archive, directory], cancellationToken).ConfigureAwait(false);
        }

        if (deleted.Count > 0)
        {
            await home.WriteFileAsync(list, NulSeparated(deleted), cancellationToken).ConfigureAwait(false);
            await RunCheckedAsync(home, "remove the files the winner removed", ["-c", "cd \"$1\" && xargs -0 rm -f -- < \"$0\"; status=$?; rm -f \"$0\"; exit $status", list, directory], cancellationToken).ConfigureAwait(false);
        }

        return new AdoptReport(directory, changed, deleted);
    }

    private static byte[] NulSeparated(IEnumerable<string> paths) => Encoding.UTF8.GetBytes(string.Concat(paths.Select(p => p + "\0")));

    private static async Task RunCheckedAsync(SandboxProxyClient sandbox, string what, List<string> args, CancellationToken cancellationToken)
    {
        var result = await sandbox.RunAsync(new RunProcessRequest { Command = "sh", Args = args, Timeout = 300 }, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new ForkExploreException($"adopting the winner failed: could not {what} (exit {result.ExitCode}): {result.Stderr.Trim()}");
        }
    }
}
