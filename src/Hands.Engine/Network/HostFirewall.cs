using System.Globalization;
using System.Text;
using Hands.Engine.Hosting;

namespace Hands.Engine.Network;

/// <summary>
/// Isolation enforced on the host's side of every sandbox's veth, where nothing in a sandbox can reach it (not even
/// with raw sockets or by rewriting its own namespace's rules): from a sandbox, the host answers only the ports the
/// operator forwards (<c>--host-port</c>) and replies to connections the host opened; nothing is forwarded between
/// sandboxes or out of the host; and only the host's root (the engine) may open connections into a sandbox, so an
/// unprivileged host user cannot reach a sandbox's daemon or ports past the authenticated ingress. One set of chains
/// per engine, matched by its interface prefix (<see cref="NetworkSlot.PrefixFor"/>): made at start, kept while
/// sandboxes run (they outlive an engine restart), removed when an engine stops with none left.
/// <para>
/// Also a blackhole route for the whole sandbox range, under every sandbox's own /30 (more specific, so it wins while
/// that veth is up): while a sandbox's host end is down (a fork's quarantine, a hibernation, a memory checkpoint) the
/// host's packets for its address are dropped instead of leaving by the default route towards a real network, where
/// another host could answer them. One route for every engine on the host, so it stays when an engine stops;
/// <c>scripts/uninstall.sh</c> removes it.
/// </para>
/// </summary>
internal static class HostFirewall
{
    /// <summary>The chain that filters traffic from this engine's sandboxes to the host.</summary>
    public static string InputChain(string prefix) => $"HANDS-{prefix}-IN";

    /// <summary>The chain that filters connections from the host into this engine's sandboxes.</summary>
    public static string OutputChain(string prefix) => $"HANDS-{prefix}-OUT";

    /// <summary>Installs (or refreshes, after a change of forwarded ports) the engine's chains and their jumps.</summary>
    public static async Task ApplyAsync(string prefix, IReadOnlyList<int> hostPorts, CancellationToken cancellationToken)
    {
        var (input, output) = (InputChain(prefix), OutputChain(prefix));
        var script = new StringBuilder("set -e\n");
        script.Append(CultureInfo.InvariantCulture, $"ip route replace blackhole {NetworkSlot.Range}\n");
        foreach (var chain in new[] { input, output })
        {
            script.Append(CultureInfo.InvariantCulture, $"iptables -w -N {chain} 2>/dev/null || true\niptables -w -F {chain}\n");
        }

        script.Append(CultureInfo.InvariantCulture, $"iptables -w -A {input} -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n");
        foreach (var port in hostPorts.Distinct())
        {
            script.Append(CultureInfo.InvariantCulture, $"iptables -w -A {input} -d {NetworkSlot.Range} -p tcp --dport {port} -j ACCEPT\n");
        }

        script.Append(CultureInfo.InvariantCulture, $"iptables -w -A {input} -p tcp -j REJECT --reject-with tcp-reset\n");
        script.Append(CultureInfo.InvariantCulture, $"iptables -w -A {input} -j REJECT --reject-with icmp-admin-prohibited\n");
        script.Append(CultureInfo.InvariantCulture, $"iptables -w -A {output} -m owner ! --uid-owner 0 -j REJECT --reject-with icmp-admin-prohibited\n");
        foreach (var jump in Jumps(prefix))
        {
            script.Append(CultureInfo.InvariantCulture, $"iptables -w -C {jump} 2>/dev/null || iptables -w -I {jump}\n");
        }

        await CommandRunner.RunCheckedAsync("/bin/sh", ["-c", script.ToString()], cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Removes the engine's jumps and chains; missing ones are fine.</summary>
    public static async Task RemoveAsync(string prefix, CancellationToken cancellationToken)
    {
        var script = new StringBuilder();
        foreach (var jump in Jumps(prefix))
        {
            script.Append(CultureInfo.InvariantCulture, $"while iptables -w -D {jump} 2>/dev/null; do :; done\n");
        }

        foreach (var chain in new[] { InputChain(prefix), OutputChain(prefix) })
        {
            script.Append(CultureInfo.InvariantCulture, $"iptables -w -F {chain} 2>/dev/null; iptables -w -X {chain} 2>/dev/null\n");
        }

        script.Append("true\n");
        await CommandRunner.RunAsync("/bin/sh", ["-c", script.ToString()], cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Whether the engine's chains exist (for checks that nothing is left).</summary>
    public static async Task<bool> ExistsAsync(string prefix, CancellationToken cancellationToken)
    {
        var result = await CommandRunner.RunAsync("iptables", ["-w", "-n", "-L", InputChain(prefix)], cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.ExitCode == 0;
    }

    private static string[] Jumps(string prefix) =>
    [
        $"INPUT -i {prefix}+ -j {InputChain(prefix)}",
        $"FORWARD -i {prefix}+ -j REJECT --reject-with icmp-admin-prohibited",
        $"FORWARD -o {prefix}+ -j REJECT --reject-with icmp-admin-prohibited",
        $"OUTPUT -o {prefix}+ -j {OutputChain(prefix)}",
    ];
}
