using System.Globalization;
using System.Text.RegularExpressions;

namespace Hands.Engine.Network.Telemetry;

/// <summary>The packets and bytes one of the egress policy's refusing rules has matched since the rules were applied.</summary>
internal sealed record PolicyCounter(string Rule, string Detail, string Target, long Packets, long Bytes);

/// <summary>
/// Reads the counters of the refusing rules <see cref="EgressRules"/> tags with a comment (<see cref="Comment"/>) out of
/// <c>iptables-save -c</c>'s output. Refused packets never enter the connection-tracking table (an entry is confirmed
/// only when its first packet leaves), so these counters are how a refusal is seen at all.
/// </summary>
internal static partial class PolicyCounters
{
    private const string Prefix = "hands:";

    /// <summary>
    /// The comment that tags a refusing rule: its reason (<c>deny_out</c>, <c>sandbox_isolation</c>,
    /// <c>not_in_allow_out</c>, <c>no_internet_access</c>) and the destination it names, if any. No spaces, so
    /// iptables-save prints it unquoted and it survives a round trip.
    /// </summary>
    public static string Comment(string detail, string target) => $"{Prefix}{detail}:{target}";

    /// <summary>The tagged rules' counters, summed per comment (one entry listed twice is one rule here).</summary>
    public static IReadOnlyList<PolicyCounter> Parse(string iptablesSave)
    {
        var counters = new Dictionary<string, PolicyCounter>(StringComparer.Ordinal);
        foreach (var line in iptablesSave.Split('\n'))
        {
            var match = TaggedRule().Match(line);
            if (!match.Success)
            {
                continue;
            }

            var packets = long.Parse(match.Groups["packets"].Value, CultureInfo.InvariantCulture);
            var bytes = long.Parse(match.Groups["bytes"].Value, CultureInfo.InvariantCulture);
            var rule = Prefix + match.Groups["detail"].Value + ":" + match.Groups["target"].Value;
            counters[rule] = counters.TryGetValue(rule, out var seen)
                ? seen with { Packets = seen.Packets + packets, Bytes = seen.Bytes + bytes }
                : new PolicyCounter(rule, match.Groups["detail"].Value, match.Groups["target"].Value, packets, bytes);
        }

        return [.. counters.Values];
    }

    [GeneratedRegex("""^\[(?<packets>\d+):(?<bytes>\d+)\] -A \S+ .*--comment "?hands:(?<detail>[a-z_]+):(?<target>[0-9./]*)"? .*-j REJECT""")]
    private static partial Regex TaggedRule();
}
