using System.Reflection;
using System.Text.Json.Nodes;

namespace Hands.Engine.Runtime;

/// <summary>
/// The sandbox's seccomp filter, with the semantics of Docker's default profile: refuse by default (EPERM), allow the
/// calls in <c>seccomp-allowed.txt</c>, and leave out what reaches the kernel's rarely used or host-wide surface: new
/// namespaces (<c>unshare</c>, <c>setns</c>, <c>clone</c> with a namespace flag; <c>clone3</c> answers ENOSYS so libc
/// falls back to <c>clone</c>, whose flags a filter can see), mounts and the new mount API, <c>keyctl</c> and the key
/// calls, <c>bpf</c>, <c>perf_event_open</c>, <c>userfaultfd</c>, <c>io_uring</c>, kernel modules, <c>kexec</c>,
/// clock and time setting, swap, <c>reboot</c>, quotas, raw I/O ports, handle-based opens and
/// <c>personality</c> beyond the values Docker allows. CRIU dumps and restores the filter with the processes.
/// </summary>
internal static class SeccompProfile
{
    /// <summary>CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET.</summary>
    private const long NamespaceFlags = 0x7E020000;

    /// <summary>The personality values Docker's profile allows: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, query.</summary>
    private static readonly long[] Personalities = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

    private const int Eperm = 1;
    private const int Enosys = 38;

    private static readonly Lazy<IReadOnlyList<string>> AllowedCalls = new(LoadAllowed);

    /// <summary>The system calls allowed without argument checks.</summary>
    public static IReadOnlyList<string> Allowed => AllowedCalls.Value;

    /// <summary>The <c>linux.seccomp</c> object of an OCI runtime spec.</summary>
    public static JsonObject Build()
    {
        var syscalls = new JsonArray
        {
            new JsonObject { ["names"] = Names(Allowed), ["action"] = "SCMP_ACT_ALLOW" },
            new JsonObject
            {
                ["names"] = Names(["clone"]),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray { new JsonObject { ["index"] = 0, ["value"] = NamespaceFlags, ["valueTwo"] = 0, ["op"] = "SCMP_CMP_MASKED_EQ" } },
            },
            new JsonObject { ["names"] = Names(["clone3"]), ["action"] = "SCMP_ACT_ERRNO", ["errnoRet"] = Enosys },
        };
        foreach (var value in Personalities)
        {
            syscalls.Add(new JsonObject
            {
                ["names"] = Names(["personality"]),
                ["action"] = "SCMP_ACT_ALLOW",
                ["args"] = new JsonArray { new JsonObject { ["index"] = 0, ["value"] = value, ["op"] = "SCMP_CMP_EQ" } },
            });
        }

        return new JsonObject
        {
            ["defaultAction"] = "SCMP_ACT_ERRNO",
            ["defaultErrnoRet"] = Eperm,
            ["architectures"] = new JsonArray { "SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32" },
            ["syscalls"] = syscalls,
        };
    }

    private static JsonArray Names(IEnumerable<string> names) => new([.. names.Select(n => (JsonNode)n)]);

    private static List<string> LoadAllowed()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Hands.Engine.Runtime.seccomp-allowed.txt")
            ?? throw new InvalidOperationException("the seccomp allow-list resource is missing from Hands.Engine");
        using var reader = new StreamReader(stream);
        var names = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            line = line.Trim();
            if (line.Length > 0 && !line.StartsWith('#'))
            {
                names.Add(line);
            }
        }

        return names;
    }
}
