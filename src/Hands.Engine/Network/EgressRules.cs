using System.Net;
using System.Net.Sockets;
using System.Text;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Network;

/// <summary>
/// Turns a sandbox's <c>network</c> policy into iptables rules inside its own network namespace, where the sandbox
/// (no CAP_NET_ADMIN) cannot change them. Order: loopback and replies pass; <c>deny_out</c> is refused; the gateway's
/// host-forward ports pass; every other sandbox's address is refused (isolation, whatever the policy says);
/// <c>allow_out</c> passes; then the default: allow when <c>allow_out</c> is empty and <c>allow_internet_access</c>
/// is true, refuse otherwise (DNS passes when
/// <c>allow_out</c> is set and internet access is allowed, as Tensorlake documents). Hostnames are resolved when the
/// policy is applied; one that does not resolve rejects the policy and the old one stays. Inbound, the daemon's port
/// answers only the engine's end of the veth: not the sandbox's own processes over loopback or its own address.
/// These rules are the sandbox's side; <see cref="HostFirewall"/> enforces isolation again where the sandbox has no reach.
/// </summary>
internal static class EgressRules
{
    public static async Task<string> RenderAsync(NetworkPolicy? policy, NetworkSlot slot, IReadOnlyList<int> hostPorts, CancellationToken cancellationToken)
    {
        var rules = new StringBuilder();
        rules.Append("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:HANDS-POLICY - [0:0]\n");
        rules.Append($"-A INPUT -i eth0 -s {slot.HostAddress}/32 -p tcp --dport {Sandboxes.SandboxDaemonClient.Port} -j ACCEPT\n");
        rules.Append($"-A INPUT -p tcp --dport {Sandboxes.SandboxDaemonClient.Port} -j REJECT --reject-with tcp-reset\n");
        rules.Append("-A OUTPUT -o lo -j ACCEPT\n");
        rules.Append("-A OUTPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n");
        foreach (var target in await ResolveAsync(policy?.DenyOut ?? [], "deny_out", cancellationToken).ConfigureAwait(false))
        {
            rules.Append($"-A OUTPUT -d {target} -m comment --comment {Telemetry.PolicyCounters.Comment("deny_out", target)} -j REJECT\n");
        }

        // The engine's host forwards are the operator's own services (the API a worker reports to): always reachable.
        foreach (var port in hostPorts)
        {
            rules.Append($"-A OUTPUT -d {slot.HostAddress}/32 -p tcp --dport {port} -j ACCEPT\n");
        }

        // The sandbox's own gateway follows the policy; every other address in 10.200.0.0/16 is another sandbox.
        rules.Append($"-A OUTPUT -d {slot.HostAddress}/32 -j HANDS-POLICY\n");
        rules.Append($"-A OUTPUT -d {slot.HostAddress}/32 -j ACCEPT\n");
        rules.Append($"-A OUTPUT -d {NetworkSlot.Range} -m comment --comment {Telemetry.PolicyCounters.Comment("sandbox_isolation", NetworkSlot.Range)} -j REJECT\n");
        rules.Append("-A OUTPUT -j HANDS-POLICY\n");
        var allow = await ResolveAsync(policy?.AllowOut ?? [], "allow_out", cancellationToken).ConfigureAwait(false);
        foreach (var target in allow)
        {
            rules.Append($"-A HANDS-POLICY -d {target} -j ACCEPT\n");
        }

        var internet = policy?.AllowInternetAccess ?? true;
        if (allow.Count > 0 && internet)
        {
            rules.Append("-A HANDS-POLICY -p udp --dport 53 -j ACCEPT\n-A HANDS-POLICY -p tcp --dport 53 -j ACCEPT\n");
        }

        if (allow.Count > 0 || !internet)
        {
            // Tagged for the network telemetry: which refusal it was (PolicyCounters reads the counters back).
            rules.Append($"-A HANDS-POLICY -m comment --comment {Telemetry.PolicyCounters.Comment(allow.Count > 0 ? "not_in_allow_out" : "no_internet_access", "")} -j REJECT\n");
        }

        rules.Append("COMMIT\n");
        return rules.ToString();
    }

    /// <summary>IPv4 addresses and CIDRs as given (a <c>:port</c> suffix is tolerated and ignored); hostnames resolved.</summary>
    private static async Task<List<string>> ResolveAsync(IEnumerable<string> entries, string field, CancellationToken cancellationToken)
    {
        var targets = new List<string>();
        foreach (var raw in entries)
        {
            var entry = raw.Trim();
            var colon = entry.LastIndexOf(':');
            if (colon > 0 && !entry.Contains('/', StringComparison.Ordinal) && entry.Count(c => c == ':') == 1)
            {
                entry = entry[..colon];
            }

            if (IPNetwork.TryParse(entry, out var network) && network.BaseAddress.AddressFamily == AddressFamily.InterNetwork)
            {
                targets.Add(network.ToString());
            }
            else if (IPAddress.TryParse(entry, out var address) && address.AddressFamily == AddressFamily.InterNetwork)
            {
                targets.Add(address.ToString());
            }
            else if (Uri.CheckHostName(entry) == UriHostNameType.Dns)
            {
                IPAddress[] resolved;
                try
                {
                    resolved = await Dns.GetHostAddressesAsync(entry, AddressFamily.InterNetwork, cancellationToken).ConfigureAwait(false);
                }
                catch (SocketException)
                {
                    resolved = [];
                }

                if (resolved.Length == 0)
                {
                    throw new EngineException(400, $"{field}: the host name '{entry}' does not resolve; use an IPv4 address or CIDR, or a resolvable name");
                }

                targets.AddRange(resolved.Select(a => a.ToString()));
            }
            else
            {
                throw new EngineException(400, $"{field}: '{raw}' is not an IPv4 address, a CIDR or a host name");
            }
        }

        return targets;
    }
}
