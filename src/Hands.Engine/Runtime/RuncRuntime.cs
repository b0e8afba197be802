using System.Text.Json;
using Hands.Engine.Hosting;

namespace Hands.Engine.Runtime;

/// <summary>
/// The OCI runtime CLI (runc by default; any binary with its verbs): run, pause, resume, checkpoint, restore, delete,
/// state. Containers start with /dev/null as stdio so that nothing ties them to the engine process: they outlive an
/// engine restart and CRIU finds no external pipes to dump. runc's own messages go to a log file per call.
/// </summary>
internal sealed class RuncRuntime(string binary, string stateRoot, string? criu)
{
    public string Binary => binary;

    public bool HasCriu => criu is not null;

    private IEnumerable<string> Global(string? log = null)
    {
        yield return "--root";
        yield return stateRoot;
        if (log is not null)
        {
            yield return "--log";
            yield return log;
        }

        if (criu is not null)
        {
            yield return "--criu";
            yield return criu;
        }
    }

    /// <summary><c>runc run -d</c>: creates and starts the container from <paramref name="bundle"/>.</summary>
    public Task RunAsync(string id, string bundle, string log, CancellationToken cancellationToken) =>
        DetachedAsync([.. Global(log), "run", "-d", "--bundle", bundle, id], log, criuLog: null, cancellationToken);

    /// <summary><c>runc restore -d</c> from a CRIU image into <paramref name="bundle"/> (its own rootfs, netns and cgroup).</summary>
    public Task RestoreAsync(string id, string bundle, string imagePath, string workPath, string log, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(workPath);
        return DetachedAsync([.. Global(log), "restore", "-d", "--tcp-established", "--image-path", imagePath, "--work-path", workPath, "--bundle", bundle, id],
            log, Path.Combine(workPath, "restore.log"), cancellationToken);
    }

    /// <summary>
    /// <c>runc checkpoint</c> with CRIU. Established TCP connections are dumped too (<c>--tcp-established</c>): a sandbox
    /// with a connected worker can still be snapshotted; forks restore them closed (see the bundle's CRIU config).
    /// </summary>
    public async Task CheckpointAsync(string id, string imagePath, string workPath, bool leaveRunning, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(imagePath);
        Directory.CreateDirectory(workPath);
        List<string> args = [.. Global(), "checkpoint", "--tcp-established", "--image-path", imagePath, "--work-path", workPath];
        if (leaveRunning)
        {
            args.Add("--leave-running");
        }

        args.Add(id);
        var result = await CommandRunner.RunAsync(binary, args, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new EngineCommandException(binary, result.ExitCode, $"{result.Stderr} {CriuErrors(Path.Combine(workPath, "dump.log"))}");
        }
    }

    /// <summary><c>runc update</c>: the container's memory limit and CPU quota, live (running or paused).</summary>
    public async Task UpdateResourcesAsync(string id, long memoryBytes, long cpuQuota, long cpuPeriod, CancellationToken cancellationToken) =>
        await CommandRunner.RunCheckedAsync(binary, [.. Global(), "update",
            "--memory", memoryBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--cpu-quota", cpuQuota.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--cpu-period", cpuPeriod.ToString(System.Globalization.CultureInfo.InvariantCulture), id], cancellationToken: cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Freezes the container through its cgroup's freezer, as <c>runc pause</c> does, without starting runc: each runc
    /// call is a Go program's start-up (about 5 ms of CPU), and a memory fork paused and resumed twice per child on a
    /// 2-core host. <c>runc pause</c> remains the fallback when the freezer cannot be found or does not settle.
    /// </summary>
    public async Task PauseAsync(string id, CancellationToken cancellationToken)
    {
        if (!await CgroupFreezer.SetAsync(id, frozen: true, cancellationToken).ConfigureAwait(false))
        {
            await CommandRunner.RunCheckedAsync(binary, [.. Global(), "pause", id], cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Thaws the container through its cgroup's freezer (<c>runc resume</c> when that cannot be done).</summary>
    public async Task ResumeAsync(string id, CancellationToken cancellationToken)
    {
        if (!await CgroupFreezer.SetAsync(id, frozen: false, cancellationToken).ConfigureAwait(false))
        {
            await CommandRunner.RunCheckedAsync(binary, [.. Global(), "resume", id], cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Whether the container's cgroup is frozen (runc's <c>paused</c>), read from the freezer; <c>runc state</c> when it cannot be.</summary>
    public async Task<bool> IsPausedAsync(string id, CancellationToken cancellationToken) =>
        CgroupFreezer.IsFrozen(id) ?? await StateAsync(id, cancellationToken).ConfigureAwait(false) == "paused";

    /// <summary><c>runc delete -f</c>; a container that does not exist is already deleted.</summary>
    public async Task DeleteAsync(string id, CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync(binary, [.. Global(), "delete", "-f", id], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0 && !result.Stderr.Contains("does not exist", StringComparison.OrdinalIgnoreCase) && !result.Stderr.Contains("not exist", StringComparison.OrdinalIgnoreCase))
        {
            throw new EngineCommandException(binary, result.ExitCode, result.Stderr);
        }
    }

    /// <summary>The container's status (<c>running</c>, <c>paused</c>, <c>stopped</c>, <c>created</c>), or null when there is none.</summary>
    public async Task<string?> StateAsync(string id, CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync(binary, [.. Global(), "state", id], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            return null;
        }

        using var json = JsonDocument.Parse(result.Stdout);
        return json.RootElement.TryGetProperty("status", out var status) ? status.GetString() : null;
    }

    /// <summary>Whether the runtime answers: <c>runc list</c> under the engine's state root exits 0 (readiness).</summary>
    public async Task<bool> RespondsAsync(CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync(binary, [.. Global(), "list", "-q"], cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0;
    }

    /// <summary>Ids of every container under the engine's state root.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync(binary, [.. Global(), "list", "-q"], cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0 ? result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
    }

    private async Task DetachedAsync(IReadOnlyList<string> args, string log, string? criuLog, CancellationToken cancellationToken)
    {
        File.Delete(log);
        var result = await CommandRunner.RunAsync("/bin/sh", ["-c", "exec \"$@\" </dev/null >/dev/null 2>&1", "sh", binary, .. args], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            var runcLog = File.Exists(log) ? await File.ReadAllTextAsync(log, cancellationToken).ConfigureAwait(false) : "";
            var criuErrors = criuLog is null ? "" : CriuErrors(criuLog);
            throw new EngineCommandException(binary, result.ExitCode, $"{LastMessages(runcLog)} {criuErrors}".Trim());
        }
    }

    /// <summary>runc logs JSON lines; the last messages say what failed.</summary>
    private static string LastMessages(string log)
    {
        var messages = new List<string>();
        foreach (var line in log.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.TryGetProperty("msg", out var msg))
                {
                    messages.Add(msg.GetString() ?? "");
                }
            }
            catch (JsonException)
            {
                messages.Add(line);
            }
        }

        return string.Join("; ", messages.TakeLast(3));
    }

    private static string CriuErrors(string logPath)
    {
        if (!File.Exists(logPath))
        {
            return "";
        }

        // The RLIMIT_NOFILE complaint appears on every run here (no CAP_SYS_RESOURCE) and is harmless. The line
        // before the first real error usually names the file or socket CRIU choked on.
        var lines = File.ReadAllLines(logPath);
        var first = Array.FindIndex(lines, l => l.Contains("Error", StringComparison.Ordinal) && !l.Contains("RLIMIT_NOFILE", StringComparison.Ordinal));
        return first < 0 ? "" : string.Join(" ", lines.Skip(Math.Max(0, first - 1)).Take(4).Select(l => l.Trim()));
    }
}
