
namespace Hands.Engine.Hosting;

/// <summary>The host binaries bound into every sandbox, and whether CRIU works here.</summary>
internal sealed record EngineBinaries(string SandboxDaemon, string? Worker, string Init, string? Criu, string? CriuProblem)
{
    /// <summary>Checks root, the runtime and the tools the engine drives; each missing piece is named with its fix.</summary>
    public static async Task<EngineBinaries> ProbeAsync(EngineOptions options, CancellationToken cancellationToken)
    {
        if (Native.GetEffectiveUserId() != 0)
        {
            throw new EngineException(500, "the engine needs root: runc, overlay mounts and network namespaces are root-only; run 'sudo hands engine ...'");
        }

        // Every missing piece is named with the Debian package that has it, all at once, so one apt-get line fixes them.
        var missing = new List<(string What, string Package)>();
        var runtime = await CommandRunner.RunAsync("/bin/sh", ["-c", "command -v \"$0\"", options.RuntimeBinary], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (runtime.ExitCode != 0)
        {
            missing.Add(($"the OCI runtime '{options.RuntimeBinary}' (or pass --runtime PATH)", "runc"));
        }

        foreach (var (tool, package) in RequiredTools)
        {
            var found = await CommandRunner.RunAsync("/bin/sh", ["-c", "command -v \"$0\"", tool], cancellationToken: cancellationToken).ConfigureAwait(false);
            if (found.ExitCode != 0)
            {
                missing.Add(($"'{tool}'", package));
            }
        }

        if (!File.Exists(options.InitBinary))
        {
            missing.Add(($"the sandbox init '{options.InitBinary}' (or pass --init PATH)", "tini"));
        }

        if (missing.Count > 0)
        {
            var packages = string.Join(' ', missing.Select(m => m.Package).Distinct(StringComparer.Ordinal));
            throw new EngineException(500, $"missing {string.Join(", ", missing.Select(m => $"{m.What} from {m.Package}"))}; install them: apt-get install {packages}");
        }

        var daemon = Find(options.SandboxDaemonBinary, "HANDS_SANDBOXD_BINARY", "hands-sandboxd")
            ?? throw new EngineException(500, $"the in-sandbox daemon hands-sandboxd was not found (looked beside hands: {string.Join(", ", BinaryLocator.Directories("hands-sandboxd"))}); install Hands (scripts/install.sh puts it beside hands), or publish it (dotnet publish src/Hands.SandboxDaemon -r linux-x64 -o artifacts/hands-sandboxd) and pass --sandboxd PATH or set HANDS_SANDBOXD_BINARY");
        var worker = Find(options.WorkerBinary, "HANDS_WORKER_BINARY", "hands-worker");
        var (criu, problem) = options.UserNamespace
            ? (null, "off with --userns: CRIU cannot restore a sandbox in a user namespace into the engine's network namespace (docs/engine.md#user-namespaces)")
            : await ProbeCriuAsync(options.CriuBinary, cancellationToken).ConfigureAwait(false);
        return new EngineBinaries(daemon, worker, options.InitBinary, criu, problem);
    }

    /// <summary>The tools the engine runs, each with the Debian package that has it.</summary>
    internal static readonly (string Tool, string Package)[] RequiredTools =
    [
        ("ip", "iproute2"), ("unshare", "util-linux"), ("nsenter", "util-linux"), ("losetup", "util-linux"), ("fallocate", "util-linux"),
        ("findmnt", "util-linux"), ("mkfs.ext4", "e2fsprogs"), ("resize2fs", "e2fsprogs"), ("iptables-restore", "iptables"),
    ];

    private static string? Find(string? configured, string variable, string fileName)
    {
        if (!string.IsNullOrEmpty(configured))
        {
            return File.Exists(configured) ? Path.GetFullPath(configured) : throw new EngineException(500, $"'{configured}' does not exist");
        }

        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnvironment && File.Exists(fromEnvironment))
        {
            return Path.GetFullPath(fromEnvironment);
        }

        return BinaryLocator.Find(fileName);
    }

    /// <summary>CRIU must pass <c>criu check</c>; Debian 12's 3.17 fails on kernels >= 6.13, so the reason is kept for the error.</summary>
    private static async Task<(string? Criu, string? Problem)> ProbeCriuAsync(string? configured, CancellationToken cancellationToken)
    {
        var candidates = configured is not null ? [configured] : new[] { "/opt/hands/criu/criu", "criu" };
        string? lastProblem = null;
        foreach (var candidate in candidates)
        {
            try
            {
                var check = await CommandRunner.RunAsync(candidate, ["check"], cancellationToken: cancellationToken).ConfigureAwait(false);
                if (check.ExitCode == 0)
                {
                    return (candidate, null);
                }

                lastProblem = $"'{candidate} check' failed: {check.Stderr.Trim().Split('\n').LastOrDefault()}";
            }
            catch (EngineCommandException)
            {
                lastProblem ??= $"'{candidate}' was not found";
            }
        }

        return (null, $"{lastProblem}; memory snapshots and hibernation need CRIU >= 4.1: run scripts/lib/criu.sh (Debian 13's criu in a private prefix) or pass --criu PATH");
    }
}
