using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Hands.Engine.Hosting;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Xunit.Abstractions;

namespace Hands.Engine.Tests;

/// <summary>
/// The sandbox's code is an attacker. Each attack below is tried for real, from inside a sandbox (as its root and as
/// an unprivileged user) and from the host as an unprivileged user, against the engine's hardened defaults. Every
/// attack prints <c>BREACH</c> only when it got through; the suite counts attacks tried and attacks that got through
/// and fails on any.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class AttackTests(EngineFixture engine, ITestOutputHelper output)
{
    private const string Nobody = "65534:65534";

    /// <summary>A system call made directly (ctypes): refused when it fails with EPERM or ENOSYS; any other answer reached the kernel.</summary>
    private static string Syscall(int number, params long[] args) =>
        "python3 -c 'import ctypes,sys\nlibc=ctypes.CDLL(None,use_errno=True)\nr=libc.syscall(" + number.ToString(CultureInfo.InvariantCulture)
        + string.Concat(args.Select(a => ",ctypes.c_long(" + a.ToString(CultureInfo.InvariantCulture) + ")"))
        + ")\ne=ctypes.get_errno()\nprint(\"held\" if r<0 and e in (1,38) else \"BREACH r=%d errno=%d\" % (r,e))'";

    private static readonly (string Name, string Script)[] KernelAttacks =
    [
        ("new user namespace (unshare -Urn)", "unshare -Urn true 2>/dev/null && echo BREACH || echo held"),
        ("new network namespace (unshare -n)", "unshare -n true 2>/dev/null && echo BREACH || echo held"),
        ("unshare(CLONE_NEWUSER) by syscall", Syscall(272, 0x10000000)),
        ("setns", Syscall(308, 0, 0)),
        ("keyctl", Syscall(250, 0, -3, 0)),
        ("add_key", Syscall(248, 0, 0, 0, 0, -3)),
        ("bpf", Syscall(321, 0, 0, 0)),
        ("perf_event_open", Syscall(298, 0, 0, -1, -1, 0)),
        ("userfaultfd", Syscall(323, 0)),
        ("io_uring_setup", Syscall(425, 1, 0)),
        ("init_module", Syscall(175, 0, 0, 0)),
        ("finit_module", Syscall(313, 0, 0, 0)),
        ("kexec_load", Syscall(246, 0, 0, 0, 0)),
        ("clock_settime", Syscall(227, 0, 0)),
        ("settimeofday", Syscall(164, 0, 0)),
        ("open_by_handle_at", Syscall(304, 0, 0, 0)),
        ("mount by syscall", Syscall(165, 0, 0, 0, 0, 0)),
        ("swapon", Syscall(167, 0, 0)),
        ("iopl", Syscall(172, 3)),
        ("personality(ADDR_NO_RANDOMIZE)", Syscall(135, 0x0040000)),
        ("mount a tmpfs", "mount -t tmpfs none /mnt 2>/dev/null && echo BREACH || echo held"),
        ("packet socket (AF_PACKET)", "python3 -c 'import socket\ntry:\n  socket.socket(17, socket.SOCK_RAW, 0); print(\"BREACH\")\nexcept OSError: print(\"held\")'"),
        ("raw IPv4 socket", "python3 -c 'import socket\ntry:\n  socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP); print(\"BREACH\")\nexcept OSError: print(\"held\")'"),
        ("re-enable IPv6", "echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null; ip -6 addr 2>/dev/null | grep -q inet6 && echo BREACH || echo held"),
        ("write /proc/sysrq-trigger", "echo h > /proc/sysrq-trigger 2>/dev/null && echo BREACH || echo held"),
        ("write a kernel setting in /proc/sys", "echo hacked > /proc/sys/kernel/domainname 2>/dev/null && echo BREACH || echo held"),
        ("read /proc/kcore", "head -c 1 /proc/kcore 2>/dev/null | wc -c | grep -q 1 && echo BREACH || echo held"),
        ("make a block device node", "mknod /tmp/disk b 8 0 2>/dev/null && echo BREACH || echo held"),
        ("no_new_privs off", "grep -q 'NoNewPrivs:\\s*1' /proc/self/status && echo held || echo BREACH"),
        ("CAP_NET_RAW or CAP_SYS_ADMIN held", "python3 -c 'import re\nc=int(re.search(r\"CapEff:\\s*(\\w+)\", open(\"/proc/self/status\").read()).group(1),16)\nprint(\"BREACH\" if c & ((1<<13)|(1<<21)|(1<<12)|(1<<19)) else \"held\")'"),
        ("the host's cgroup tree", "grep -q '^0::/$\\|:/$' /proc/self/cgroup && ! grep -q hands /proc/self/cgroup && echo held || echo BREACH"),
    ];

    private static readonly (string Name, string Script)[] DaemonAttacks =
    [
        ("sandbox daemon over loopback, no token", "code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://127.0.0.1:9501/api/v1/processes); [ \"$code\" = 200 ] && echo BREACH || echo held"),
        ("sandbox daemon over its own address", "a=$(ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4 | cut -d/ -f1); code=$(curl -s -m 5 -o /dev/null -w '%{http_code}' http://$a:9501/api/v1/processes); [ \"$code\" = 200 ] && echo BREACH || echo held"),
        ("sandbox daemon's token file", "test -e /run/hands-sandboxd.token && echo BREACH || echo held"),
        ("sandbox daemon's environment and memory", "for p in /proc/[0-9]*; do if [ \"$(cat $p/comm 2>/dev/null)\" = hands-sandboxd ]; then (cat $p/environ >/dev/null 2>&1 || head -c1 $p/mem >/dev/null 2>&1) && echo BREACH || echo held; fi; done | sort -u"),
    ];

    [Fact]
    public async Task Every_attack_is_refused()
    {
        var tally = new Tally(output);
        await using var target = await engine.CreateAsync(new CreateSandboxRequest { ExposedPorts = [SandboxWorkloads.CounterPort] });
        await using var attacker = await engine.CreateAsync();
        await SandboxWorkloads.StartCounterServerAsync(engine.Engine, target);
        var targetAddress = (await target.RunAsync("ip -4 -o addr show eth0 | tr -s ' ' | cut -d' ' -f4 | cut -d/ -f1")).Stdout.Trim();
        var gateway = (await attacker.RunAsync("ip route | grep default | cut -d' ' -f3")).Stdout.Trim();
        Assert.StartsWith("10.200.", targetAddress, StringComparison.Ordinal);

        foreach (var (name, script) in KernelAttacks.Concat(DaemonAttacks))
        {
            await tally.InSandboxAsync(attacker, "root", name, script);
        }

        foreach (var (name, script) in DaemonAttacks.Take(2).Concat(KernelAttacks.Where(a => a.Name.StartsWith("new user", StringComparison.Ordinal) || a.Name.StartsWith("packet", StringComparison.Ordinal))))
        {
            await tally.InSandboxAsync(attacker, Nobody, name, script, user: Nobody);
        }

        await tally.InSandboxAsync(attacker, Nobody, "capabilities of an unprivileged process", "grep -q 'CapEff:\\s*0000000000000000' /proc/self/status && echo held || echo BREACH", user: Nobody);
        await tally.InSandboxAsync(attacker, Nobody, "read PID 1's environment", "cat /proc/1/environ >/dev/null 2>&1 && echo BREACH || echo held", user: Nobody);

        // The namespace's rules, read from the host after the sandbox's root tried to flush them.
        await attacker.RunAsync("iptables -w -F OUTPUT; iptables -w -F INPUT; iptables -w -P OUTPUT ACCEPT; true");
        var rules = await CommandRunner.RunCheckedAsync("nsenter", [$"--net={Path.Combine(engine.DataDirectory, "netns", attacker.Id)}", "iptables-save"]);
        tally.Record("root", "flush the namespace's own firewall", rules.Stdout.Contains("--dport 9501 -j REJECT", StringComparison.Ordinal) && rules.Stdout.Contains("-A OUTPUT", StringComparison.Ordinal) ? "held" : "BREACH");

        // Neighbours and the host, over the network.
        await tally.InSandboxAsync(attacker, "root", "a sibling sandbox's daemon", $"timeout 5 bash -c 'echo > /dev/tcp/{targetAddress}/9501' 2>/dev/null && echo BREACH || echo held");
        await tally.InSandboxAsync(attacker, "root", "a sibling sandbox's exposed port", $"timeout 5 bash -c 'echo > /dev/tcp/{targetAddress}/{SandboxWorkloads.CounterPort}' 2>/dev/null && echo BREACH || echo held");
        using (var hostService = new TcpListener(IPAddress.Any, 0))
        {
            hostService.Start();
            var port = ((IPEndPoint)hostService.LocalEndpoint).Port;
            await tally.InSandboxAsync(attacker, "root", "a host service on 0.0.0.0 through the gateway", $"timeout 5 bash -c 'echo > /dev/tcp/{gateway}/{port}' 2>/dev/null && echo BREACH || echo held");
            tally.Record("host", "the host service saw no connection", hostService.Pending() ? "BREACH" : "held");
        }

        var token = engine.Engine.Sandboxes.Get(attacker.Id, "default").DaemonToken;
        var everything = await attacker.RunAsync("cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | base64 -w0; echo; grep -rals . /run /tmp /root /etc 2>/dev/null | xargs cat 2>/dev/null | base64 -w0");
        var visible = string.Concat(everything.Stdout.Split('\n').Where(l => l.Length > 0).Select(l => Encoding.Latin1.GetString(Convert.FromBase64String(l.Trim()))));
        tally.Record("root", "the daemon's token in any environment, argv or file", token.Length > 0 && !visible.Contains(token, StringComparison.Ordinal) ? "held" : "BREACH");

        // From the host, as a user who is not root.
        var api = engine.Engine.ApiAddress.ToString().TrimEnd('/');
        await tally.OnHostAsync("sandbox daemon directly, as a host user", $"curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://{targetAddress}:9501/api/v1/processes | grep -q 200 && echo BREACH || echo held");
        await tally.OnHostAsync("a sandbox port directly, past the ingress", $"timeout 5 bash -c 'echo > /dev/tcp/{targetAddress}/{SandboxWorkloads.CounterPort}' 2>/dev/null && echo BREACH || echo held");
        await tally.OnHostAsync("engine API without a key", $"curl -s -m 5 -o /dev/null -w '%{{http_code}}' {api}/v1/namespaces/default/sandboxes | grep -q 401 && echo held || echo BREACH");
        await tally.OnHostAsync("the engine's data directory", $"ls {engine.DataDirectory} >/dev/null 2>&1 && echo BREACH || echo held");
        await tally.OnHostAsync("DNS rebinding: a foreign Host with a valid key", $"curl -s -m 5 -o /dev/null -w '%{{http_code}}' -H 'Host: attacker.example' -H 'Authorization: Bearer {EngineFixture.ApiKey}' {api}/v1/namespaces/default/sandboxes | grep -q 421 && echo held || echo BREACH");

        await CredentialsDroppedAsync(tally, target);
        await PlantedLinksAsync(tally);

        tally.AssertNoneGotThrough();
    }

    /// <summary>A credential handed to one process is gone from the daemon once the process ran: not listed, not in a memory snapshot.</summary>
    private async Task CredentialsDroppedAsync(Tally tally, TestSandbox sandbox)
    {
        var marker = "cred" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(16));
        var ran = await sandbox.Proxy.RunAsync(new RunProcessRequest { Command = "true", Env = new Dictionary<string, string> { ["PASSED_SECRET"] = marker } });
        Assert.Equal(0, ran.ExitCode);
        var started = await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "true", Env = new Dictionary<string, string> { ["PASSED_SECRET"] = marker } });
        var listing = string.Join('\n', (await sandbox.Proxy.ListProcessesAsync()).Select(p => System.Text.Json.JsonSerializer.Serialize(p, SandboxesJsonContext.Default.ProcessInfo)));
        tally.Record("api", "a process's credential in the process list", listing.Contains(marker, StringComparison.Ordinal) ? "BREACH" : "held");
        Assert.True(started.Pid > 0);

        if (!engine.Engine.CriuAvailable)
        {
            return;
        }

        var snapshot = await engine.Client.SnapshotAsync(sandbox.Id, SnapshotType.Memory);
        try
        {
            var images = Path.Combine(Storage.DataVolume.MountPointOf(engine.DataDirectory), "checkpoints", snapshot.SnapshotId);
            var utf8 = Directory.EnumerateFiles(images, "pages-*.img").Sum(file => Count(File.ReadAllBytes(file), Encoding.ASCII.GetBytes(marker)));
            var utf16 = Directory.EnumerateFiles(images, "pages-*.img").Sum(file => Count(File.ReadAllBytes(file), Encoding.Unicode.GetBytes(marker)));
            output.WriteLine($"marker copies: utf8 {utf8}, utf16 {utf16}");
            var found = utf8 + utf16 > 0;
            tally.Record("snapshot", "a process's credential in the daemon's memory snapshot", found ? "BREACH" : "held");

            // A memory fork restores the daemon: its root must not read that copy's memory either.
            await using var fork = await engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
            await tally.InSandboxAsync(fork, "fork", DaemonAttacks[3].Name + " in a memory fork", DaemonAttacks[3].Script);
            await tally.InSandboxAsync(fork, "fork", DaemonAttacks[0].Name + " in a memory fork", DaemonAttacks[0].Script);
        }
        finally
        {
            await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
        }
    }

    /// <summary>
    /// A sandbox's root comes back in a sandbox made from its snapshot, and the engine writes the daemon's token into
    /// that root: links planted at <c>/run</c> or at the token's name must not turn the write into one on a host file.
    /// </summary>
    private async Task PlantedLinksAsync(Tally tally)
    {
        var victims = Path.Combine(Path.GetTempPath(), "hands-victim-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(victims);
        var victimFile = Path.Combine(victims, "host-file");
        await File.WriteAllTextAsync(victimFile, "untouched");
        try
        {
            foreach (var (name, plant) in new[]
            {
                ("token path linked to a host file", $"rm -f /run/hands-sandboxd.token; ln -s {victimFile} /run/hands-sandboxd.token"),
                ("/run linked to a host directory", $"rm -rf /run && ln -s {victims} /run"),
            })
            {
                await using var planter = await engine.CreateAsync();
                var planted = await planter.RunAsync(plant + " && echo planted");
                Assert.Contains("planted", planted.Stdout, StringComparison.Ordinal);
                var snapshot = await engine.Client.SnapshotAsync(planter.Id, SnapshotType.Filesystem);
                try
                {
                    await using var child = await engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
                    var boots = (await child.RunAsync("echo up")).Stdout.Trim() == "up";
                    var hostFile = await File.ReadAllTextAsync(victimFile);
                    var written = Directory.GetFiles(victims).Length != 1 || hostFile != "untouched";
                    tally.Record("snapshot", name, written ? "BREACH: " + hostFile : boots ? "held" : "the child did not boot");
                }
                finally
                {
                    await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
                }
            }
        }
        finally
        {
            Directory.Delete(victims, recursive: true);
        }
    }

    private static int Count(byte[] haystack, byte[] needle)
    {
        var count = 0;
        var span = haystack.AsSpan();
        for (var at = span.IndexOf(needle); at >= 0; at = span.IndexOf(needle))
        {
            count++;
            span = span[(at + needle.Length)..];
        }

        return count;
    }

    /// <summary>Attacks tried and attacks that got through, printed as a table.</summary>
    private sealed class Tally(ITestOutputHelper output)
    {
        private readonly List<(string Where, string Name, string Verdict)> _results = [];

        public void Record(string where, string name, string stdout)
        {
            var verdict = stdout.Contains("BREACH", StringComparison.Ordinal) ? "GOT THROUGH: " + stdout.Trim()
                : stdout.Contains("held", StringComparison.Ordinal) ? "refused" : "INCONCLUSIVE: " + stdout.Trim();
            _results.Add((where, name, verdict));
            output.WriteLine($"{where,-9} {name,-55} {verdict}");
        }

        public async Task InSandboxAsync(TestSandbox sandbox, string where, string name, string script, string? user = null)
        {
            var result = await sandbox.Proxy.RunAsync(new RunProcessRequest { Command = "bash", Args = ["-c", script], User = user });
            Record(where, name, result.Stdout + result.Stderr);
        }

        /// <summary>Runs <paramref name="script"/> on the host as nobody (setpriv), outside every namespace.</summary>
        public async Task OnHostAsync(string name, string script)
        {
            var result = await CommandRunner.RunAsync("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", "--", "bash", "-c", script]);
            Record("host", name, result.Stdout + result.Stderr);
        }

        public void AssertNoneGotThrough()
        {
            var through = _results.Where(r => r.Verdict != "refused").ToList();
            output.WriteLine($"{_results.Count} attacks tried, {through.Count} got through");
            Assert.True(through.Count == 0, $"{_results.Count} attacks tried, {through.Count} got through or were inconclusive:\n"
                + string.Join('\n', through.Select(t => $"  [{t.Where}] {t.Name}: {t.Verdict}")));
            Assert.True(_results.Count >= 58, $"only {_results.Count} attacks ran (58 expected); the suite lost some");
        }
    }
}
