namespace Hands.Engine.Runtime;

/// <summary>
/// The freezer of a sandbox's cgroup (<c>cgroupsPath /hands/{id}</c>), read and written directly: cgroup v1's
/// <c>freezer.state</c> (FROZEN / THAWED, settling through FREEZING) or v2's <c>cgroup.freeze</c> with
/// <c>cgroup.events</c>. The same files <c>runc pause</c>, <c>resume</c> and <c>state</c> use.
/// </summary>
internal static class CgroupFreezer
{
    /// <summary>How many 1 ms waits a freeze may take to settle before runc is asked instead.</summary>
    private const int SettleWaits = 500;

    private static string V1State(string id) => Path.Combine("/sys/fs/cgroup/freezer/hands", id, "freezer.state");

    private static string V2Directory(string id) => Path.Combine("/sys/fs/cgroup/hands", id);

    private static bool PureV2 => File.Exists("/sys/fs/cgroup/cgroup.controllers");

    /// <summary>Freezes or thaws; false when the freezer is not there or did not settle (the caller then asks runc).</summary>
    public static async Task<bool> SetAsync(string id, bool frozen, CancellationToken cancellationToken)
    {
        try
        {
            var v1 = V1State(id);
            if (File.Exists(v1))
            {
                await File.WriteAllTextAsync(v1, frozen ? "FROZEN" : "THAWED", cancellationToken).ConfigureAwait(false);
                return await SettleAsync(() => IsFrozen(id) == frozen, cancellationToken).ConfigureAwait(false);
            }

            var v2 = V2Directory(id);
            if (PureV2 && File.Exists(Path.Combine(v2, "cgroup.freeze")))
            {
                await File.WriteAllTextAsync(Path.Combine(v2, "cgroup.freeze"), frozen ? "1" : "0", cancellationToken).ConfigureAwait(false);
                return await SettleAsync(() => IsFrozen(id) == frozen, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone or refused: runc decides and reports.
        }

        return false;
    }

    /// <summary>True when frozen, false when thawed or on its way, null when there is no freezer to read.</summary>
    public static bool? IsFrozen(string id)
    {
        try
        {
            var v1 = V1State(id);
            if (File.Exists(v1))
            {
                return File.ReadAllText(v1).Trim() == "FROZEN";
            }

            var events = Path.Combine(V2Directory(id), "cgroup.events");
            if (PureV2 && File.Exists(events))
            {
                return File.ReadLines(events).Any(l => l.Trim() == "frozen 1");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone meanwhile.
        }

        return null;
    }

    private static async Task<bool> SettleAsync(Func<bool> settled, CancellationToken cancellationToken)
    {
        for (var wait = 0; wait < SettleWaits; wait++)
        {
            if (settled())
            {
                return true;
            }

            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }

        return settled();
    }
}
