using System.Text.Json;
using System.Text.Json.Nodes;

namespace Hands.Engine.Runtime;

/// <summary>What goes into a container's <c>config.json</c>.</summary>
internal sealed record BundleSpec(
    string RootFs,
    string Hostname,
    string NetworkNamespacePath,
    string CgroupsPath,
    double Cpus,
    int MemoryMb,
    IReadOnlyList<string> Args,
    IReadOnlyList<string> Env,
    IReadOnlyList<BindMount> Binds,
    string? CriuConfigPath,
    bool UserNamespace = false);

/// <summary>A read-only (or not) bind of a host path into the sandbox.</summary>
internal sealed record BindMount(string Source, string Destination, bool ReadOnly = true);

/// <summary>
/// Writes the OCI runtime spec for a sandbox, hardened as the sandbox's code is assumed hostile: Docker's default
/// capabilities less <c>CAP_NET_RAW</c> (no packet sockets that skip the namespace's rules) and <c>CAP_MKNOD</c>, none
/// of them ambient (a process started as another user has none), <c>no_new_privs</c>, the seccomp filter of
/// <see cref="SeccompProfile"/>, a cgroup namespace, and /proc and /sys masked as Docker masks them. No
/// <c>CAP_NET_ADMIN</c>, so a sandbox cannot rewrite its own rules; no <c>CAP_SYS_ADMIN</c> or <c>CAP_SYS_PTRACE</c>.
/// The network namespace is the engine's, joined by path, which CRIU treats as external: a restored copy keeps working
/// networking and a fork can join a fresh one.
/// </summary>
internal static class BundleWriter
{
    private static readonly string[] Capabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    private static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap",
    ];

    private static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>The CFS period every sandbox gets (100 ms); its quota is <c>cpus</c> of it.</summary>
    public const long CpuPeriod = 100_000;

    /// <summary>The CFS quota for <paramref name="cpus"/> (at least 1 ms per period).</summary>
    public static long CpuQuota(double cpus) => (long)Math.Max(1000, cpus * CpuPeriod);

    /// <summary>The memory limit for <paramref name="memoryMb"/>.</summary>
    public static long MemoryBytes(int memoryMb) => (long)memoryMb * 1024 * 1024;

    /// <summary>
    /// Rewrites the memory limit and CPU quota in an existing bundle's <c>config.json</c>, so that a restore from it (a
    /// hibernated sandbox's wake) or a later start applies them; a running container is changed with <c>runc update</c>.
    /// </summary>
    public static void UpdateResources(string bundleDirectory, double cpus, int memoryMb)
    {
        var path = Path.Combine(bundleDirectory, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        var resources = config["linux"]!["resources"]!.AsObject();
        resources["memory"] = new JsonObject { ["limit"] = MemoryBytes(memoryMb) };
        resources["cpu"] = new JsonObject { ["quota"] = CpuQuota(cpus), ["period"] = CpuPeriod };
        var partial = path + ".partial";
        File.WriteAllText(partial, config.ToJsonString());
        File.Move(partial, path, overwrite: true);
    }

    public static void Write(string bundleDirectory, BundleSpec spec)
    {
        Directory.CreateDirectory(bundleDirectory);
        var caps = new JsonArray([.. Capabilities.Select(c => (JsonNode)c)]);
        var mounts = new JsonArray
        {
            Mount("/proc", "proc", "proc", []),
            Mount("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
            Mount("/dev/pts", "devpts", "devpts", ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            Mount("/dev/shm", "shm", "tmpfs", ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]),
            Mount("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
            // In a user namespace sysfs cannot be mounted (the network namespace is the engine's, owned by the host's user
            // namespace): an empty read-only /sys then, which also shows nothing of the host's devices.
            spec.UserNamespace
                ? Mount("/sys", "tmpfs", "tmpfs", ["nosuid", "noexec", "nodev", "ro", "size=64k", "mode=555"])
                : Mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
        };
        foreach (var bind in spec.Binds)
        {
            mounts.Add(Mount(bind.Destination, bind.Source, "bind", bind.ReadOnly ? ["rbind", "ro", "nosuid", "nodev"] : ["rbind", "nosuid", "nodev"]));
        }

        var cpuPeriod = CpuPeriod;
        var config = new JsonObject
        {
            ["ociVersion"] = "1.0.2-dev",
            ["process"] = new JsonObject
            {
                ["terminal"] = false,
                ["user"] = new JsonObject { ["uid"] = 0, ["gid"] = 0 },
                ["args"] = new JsonArray([.. spec.Args.Select(a => (JsonNode)a)]),
                ["env"] = new JsonArray([.. spec.Env.Select(e => (JsonNode)e)]),
                ["cwd"] = "/",
                ["capabilities"] = new JsonObject
                {
                    ["bounding"] = caps.DeepClone(),
                    ["effective"] = caps.DeepClone(),
                    ["permitted"] = caps.DeepClone(),
                    ["ambient"] = new JsonArray(),
                },
                ["rlimits"] = new JsonArray { new JsonObject { ["type"] = "RLIMIT_NOFILE", ["hard"] = 4096, ["soft"] = 4096 } },
                ["noNewPrivileges"] = true,
                // Set, not inherited from the engine: an engine protected from the OOM killer (a negative value, and
                // the right to keep it) must not hand that to sandboxes, whose processes the host must be able to kill.
                ["oomScoreAdj"] = 0,
            },
            ["root"] = new JsonObject { ["path"] = spec.RootFs, ["readonly"] = false },
            ["hostname"] = spec.Hostname,
            ["mounts"] = mounts,
            ["linux"] = new JsonObject
            {
                ["cgroupsPath"] = spec.CgroupsPath,
                ["resources"] = new JsonObject
                {
                    ["devices"] = new JsonArray { new JsonObject { ["allow"] = false, ["access"] = "rwm" } },
                    ["memory"] = new JsonObject { ["limit"] = MemoryBytes(spec.MemoryMb) },
                    ["cpu"] = new JsonObject { ["quota"] = CpuQuota(spec.Cpus), ["period"] = cpuPeriod },
                    ["pids"] = new JsonObject { ["limit"] = 4096 },
                },
                ["namespaces"] = new JsonArray
                {
                    new JsonObject { ["type"] = "pid" },
                    new JsonObject { ["type"] = "network", ["path"] = spec.NetworkNamespacePath },
                    new JsonObject { ["type"] = "ipc" },
                    new JsonObject { ["type"] = "uts" },
                    new JsonObject { ["type"] = "mount" },
                    new JsonObject { ["type"] = "cgroup" },
                },
                ["seccomp"] = SeccompProfile.Build(),
                ["maskedPaths"] = new JsonArray([.. MaskedPaths.Select(p => (JsonNode)p)]),
                ["readonlyPaths"] = new JsonArray([.. ReadonlyPaths.Select(p => (JsonNode)p)]),
            },
        };
        if (spec.UserNamespace)
        {
            var linux = (JsonObject)config["linux"]!;
            ((JsonArray)linux["namespaces"]!).Add(new JsonObject { ["type"] = "user" });
            linux["uidMappings"] = IdMappings();
            linux["gidMappings"] = IdMappings();
        }

        if (spec.CriuConfigPath is not null)
        {
            config["annotations"] = new JsonObject { ["org.criu.config"] = spec.CriuConfigPath };
        }

        File.WriteAllText(Path.Combine(bundleDirectory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    private static JsonArray IdMappings() =>
        [new JsonObject { ["containerID"] = 0, ["hostID"] = SandboxIdentity.HostBase, ["size"] = SandboxIdentity.Size }];

    private static JsonObject Mount(string destination, string source, string type, string[] options) => new()
    {
        ["destination"] = destination,
        ["type"] = type,
        ["source"] = source,
        ["options"] = new JsonArray([.. options.Select(o => (JsonNode)o)]),
    };
}
