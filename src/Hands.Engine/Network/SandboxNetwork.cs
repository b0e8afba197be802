using System.Globalization;
using Hands.Engine.Hosting;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Network;

/// <summary>
/// One network namespace per sandbox, made by the engine: an nsfs bind mount at a file (no /run/netns needed), IPv6
/// off (the rules are IPv4 rules; nothing routes IPv6 here), connection tracking with byte counters and start times
/// (for the network telemetry, <see cref="Telemetry.NetworkTelemetry"/>), a veth pair created from inside with its peer moved to the
/// host, a /30, a default route to the host end, and the egress rules. The host's networking is never changed beyond
/// <see cref="HostFirewall"/>'s chains: no NAT, no forwarding, no bridge.
/// </summary>
internal static class SandboxNetwork
{
    /// <summary>
    /// The empty namespace alone (only a loopback, down): enough for a container to be started in it while
    /// <see cref="ConfigureAsync"/> gives it its veth, address, route and rules.
    /// </summary>
    public static async Task CreateNamespaceAsync(string namespaceFile, NetworkSlot slot, CancellationToken cancellationToken)
    {
        await DestroyAsync(namespaceFile, slot, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(Path.GetDirectoryName(namespaceFile)!);
        await File.WriteAllBytesAsync(namespaceFile, [], cancellationToken).ConfigureAwait(false);
        var result = await CommandRunner.RunAsync("unshare", [$"--net={namespaceFile}", "true"], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            await DestroyAsync(namespaceFile, slot, cancellationToken).ConfigureAwait(false);
            throw new EngineCommandException("network namespace", result.ExitCode, result.Stderr);
        }
    }

    /// <summary>
    /// Gives the namespace of <see cref="CreateNamespaceAsync"/> its veth pair, addresses, route and egress rules. The
    /// rules are in place before the host end comes up (last), so nothing can leave the namespace unfiltered even while
    /// the sandbox's own processes are already starting in it. With <paramref name="connect"/> false the host end stays
    /// down, so nothing the sandbox sends leaves it until <see cref="ConnectAsync"/> (a memory fork is quarantined this
    /// way while the processes it must not inherit are removed).
    /// </summary>
    public static async Task ConfigureAsync(string namespaceFile, NetworkSlot slot, NetworkPolicy? policy, IReadOnlyList<int> hostPorts, CancellationToken cancellationToken, bool connect = true)
    {
        var rules = await EgressRules.RenderAsync(policy, slot, hostPorts, cancellationToken).ConfigureAwait(false);
        var hostIp = slot.HostAddress.ToString();
        var sandboxIp = slot.SandboxAddress.ToString();
        // One shell for the whole set-up: each spawn costs a few ms, and this runs on every create.
        var script = string.Create(CultureInfo.InvariantCulture, $"""
            set -e
            nsenter --net="$NS" sh -c 'if [ -d /proc/sys/net/ipv6 ]; then echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; fi && for f in nf_conntrack_acct nf_conntrack_timestamp; do if [ -w /proc/sys/net/netfilter/$f ]; then echo 1 > /proc/sys/net/netfilter/$f; fi; done && ip link add eth0 type veth peer name {slot.HostInterface} netns {Environment.ProcessId} && ip link set lo up && ip addr add {sandboxIp}/30 dev eth0 && ip link set eth0 up && ip route add default via {hostIp} && iptables-restore'
            ip addr add {hostIp}/30 dev {slot.HostInterface}
            {(connect ? $"ip link set {slot.HostInterface} up" : "true")}
            """);
        var result = await CommandRunner.RunAsync("/bin/sh", ["-c", $"NS='{namespaceFile}'\n{script}"], rules, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            await DestroyAsync(namespaceFile, slot, cancellationToken).ConfigureAwait(false);
            throw new EngineCommandException("network set-up", result.ExitCode, result.Stderr);
        }
    }

    /// <summary>
    /// Brings the host end of the veth pair up and waits (at most a second) for its carrier: a SYN sent before that is
    /// lost and costs the first connection a retransmission (the fork bench's N=8 went from 1.8 s to 1.0 s with this wait).
    /// </summary>
    public static async Task ConnectAsync(NetworkSlot slot, CancellationToken cancellationToken)
    {
        await CommandRunner.RunCheckedAsync("ip", ["link", "set", slot.HostInterface, "up"], cancellationToken: cancellationToken).ConfigureAwait(false);
        var operstate = $"/sys/class/net/{slot.HostInterface}/operstate";
        for (var i = 0; i < 1000 && File.Exists(operstate) && (await File.ReadAllTextAsync(operstate, cancellationToken).ConfigureAwait(false)).Trim() != "up"; i++)
        {
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Takes the host end of the veth pair down: nothing from outside reaches the namespace (a host peer's packets stay
    /// in its own retransmission queue) and nothing leaves it, until <see cref="ConnectAsync"/>. A hibernation holds its
    /// sandbox's established connections this way, in place of CRIU's network lock.
    /// </summary>
    public static Task DisconnectAsync(NetworkSlot slot, CancellationToken cancellationToken) =>
        CommandRunner.RunCheckedAsync("ip", ["link", "set", slot.HostInterface, "down"], cancellationToken: cancellationToken);

    /// <summary>Replaces the egress rules atomically (iptables-restore commits the whole table or nothing).</summary>
    public static async Task ApplyPolicyAsync(string namespaceFile, NetworkSlot slot, NetworkPolicy? policy, IReadOnlyList<int> hostPorts, CancellationToken cancellationToken)
    {
        var rules = await EgressRules.RenderAsync(policy, slot, hostPorts, cancellationToken).ConfigureAwait(false);
        await CommandRunner.RunCheckedAsync("nsenter", [$"--net={namespaceFile}", "iptables-restore"], rules, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Unmounts the namespace (its veth pair goes with it) and removes the host end if it lingers.</summary>
    public static async Task DestroyAsync(string namespaceFile, NetworkSlot slot, CancellationToken cancellationToken)
    {
        Native.TryUnmount(namespaceFile);
        if (File.Exists(namespaceFile))
        {
            File.Delete(namespaceFile);
        }

        if (Directory.Exists($"/sys/class/net/{slot.HostInterface}"))
        {
            await CommandRunner.RunAsync("ip", ["link", "del", slot.HostInterface], cancellationToken: cancellationToken).ConfigureAwait(false);
        }
    }

    public static bool Exists(string namespaceFile) => Native.MountsUnder(namespaceFile).Count > 0;
}
