
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
        var missing = (await FindHostProgramsAsync(options, cancellationToken).ConfigureAwait(false)).Where(p => p.Required && !p.Found).ToList();
        if (missing.Count > 0)
        {
            throw new EngineException(500, $"missing {string.Join(", ", missing.Select(m => $"'{m.Name}' ({m.Use}) from {m.Package}"))}; install them: {InstallCommand(missing)}");
        }

        var daemon = Find(options.SandboxDaemonBinary, "HANDS_SANDBOXD_BINARY", "hands-sandboxd")
            ?? throw new EngineException(500, $"the in-sandbox daemon hands-sandboxd was not found (looked beside hands: {string.Join(", ", BinaryLocator.Directories("hands-sandboxd"))}); install Hands (scripts/install.sh puts it beside hands), or publish it (dotnet publish src/Hands.SandboxDaemon -r linux-x64 -o artifacts/hands-sandboxd) and pass --sandboxd PATH or set HANDS_SANDBOXD_BINARY");
        var worker = FindWorker(options);
        var (criu, problem) = options.UserNamespace
            ? (null, "off with --userns: CRIU cannot restore a sandbox in a user namespace into the engine's network namespace (docs/engine.md#user-namespaces)")
            : await ProbeCriuAsync(options.CriuBinary, cancellationToken).ConfigureAwait(false);
        return new EngineBinaries(daemon, worker, options.InitBinary, criu, problem);
    }

    /// <summary>The one command that installs <paramref name="missing"/> (each package once).</summary>
    public static string InstallCommand(IEnumerable<HostProgram> missing) =>
        "apt-get install " + string.Join(' ', missing.Select(m => m.Package).Distinct(StringComparer.Ordinal));

    /// <summary>The programs the engine runs besides its own binaries and CRIU, each with the Debian package that has it.</summary>
    internal static readonly (string Tool, string Package, string Use, bool Required)[] RequiredTools =
    [
        ("ip", "iproute2", "network namespaces and veths", true),
        ("iptables", "iptables", "the host firewall chains", true),
        ("iptables-restore", "iptables", "each sandbox's egress rules", true),
        ("nsenter", "util-linux", "entering a sandbox's network namespace", true),
        ("unshare", "util-linux", "network namespaces", true),
        ("losetup", "util-linux", "growing the data volume and disks", true),
        ("fallocate", "util-linux", "the data volume and each sandbox's disk", true),
        ("findmnt", "util-linux", "finding the data volume's device", true),
        ("mount", "mount", "loop mounts of the volume and disks", true),
        ("mkfs.ext4", "e2fsprogs", "formatting the volume and disks", true),
        ("resize2fs", "e2fsprogs", "growing the volume and disks", true),
        ("debootstrap", "debootstrap", "building the 'debian' image; the 'host' image needs none", false),
        ("conntrack", "conntrack", "network telemetry of the connections each sandbox opens (without it, only policy refusals and a gap saying why)", false),
    ];

    /// <summary>Looks up the OCI runtime, the sandbox init and every tool of <see cref="RequiredTools"/>.</summary>
    public static async Task<IReadOnlyList<HostProgram>> FindHostProgramsAsync(EngineOptions options, CancellationToken cancellationToken)
    {
        var programs = new List<HostProgram>
        {
            new(options.RuntimeBinary, "runc", await WhichAsync(options.RuntimeBinary, cancellationToken).ConfigureAwait(false), "the OCI runtime; or pass --runtime PATH"),
            new("tini", "tini", File.Exists(options.InitBinary) ? options.InitBinary : null, $"each sandbox's init, {options.InitBinary}; or pass --init PATH"),
        };
        foreach (var (tool, package, use, required) in RequiredTools)
        {
            programs.Add(new HostProgram(tool, package, await WhichAsync(tool, cancellationToken).ConfigureAwait(false), use, required));
        }

        return programs;
    }

    private static async Task<string?> WhichAsync(string program, CancellationToken cancellationToken)
    {
        var found = await CommandRunner.RunAsync("/bin/sh", ["-c", "command -v \"$0\"", program], cancellationToken: cancellationToken).ConfigureAwait(false);
        return found.ExitCode == 0 ? found.Stdout.Trim() : null;
    }

    /// <summary>Where the engine would find <c>hands-sandboxd</c> (null when nowhere), as <see cref="ProbeAsync"/> looks.</summary>
    public static string? FindSandboxDaemon(EngineOptions options) => Find(options.SandboxDaemonBinary, "HANDS_SANDBOXD_BINARY", "hands-sandboxd");

    /// <summary>Where the engine would find <c>hands-worker</c> (null when nowhere), as <see cref="ProbeAsync"/> looks.</summary>
    public static string? FindWorker(EngineOptions options) => Find(options.WorkerBinary, "HANDS_WORKER_BINARY", "hands-worker");

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
    public static async Task<(string? Criu, string? Problem)> ProbeCriuAsync(string? configured, CancellationToken cancellationToken)
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

        return (null, $"{lastProblem}; memory snapshots and hibernation need CRIU >= 4.2 (kernels >= 6.16): install.sh provisions it, or run lib/criu.sh /opt/hands/criu (scripts/lib/criu.sh in a clone: Debian's criu with its libraries in a private prefix), or pass --criu PATH");
    }
}
