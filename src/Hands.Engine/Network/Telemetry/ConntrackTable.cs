using System.Globalization;
using System.Xml;
using System.Xml.Linq;

namespace Hands.Engine.Network.Telemetry;

/// <summary>
/// Reads the XML that <c>conntrack -L -o xml,id,ktimestamp</c> prints (conntrack-tools 1.4): one <c>flow</c> per entry with
/// an <c>original</c>, a <c>reply</c> and an <c>independent</c> <c>meta</c>. Counters are there only with
/// <c>nf_conntrack_acct</c> on, start times only with <c>nf_conntrack_timestamp</c> on; missing ones stay null.
/// </summary>
internal static class ConntrackTable
{
    /// <summary>The flows in <paramref name="xml"/>; an empty or absent document is an empty table.</summary>
    public static IReadOnlyList<TrackedFlow> Parse(string xml) => Parse(xml, int.MaxValue, out _);

    /// <summary>
    /// At most <paramref name="maxFlows"/> flows of <paramref name="xml"/>, read one <c>flow</c> at a time (a sandbox can
    /// fill the host's table, so the document is never built whole); <paramref name="more"/> says another one followed.
    /// The document may be cut after the last flow wanted (the collector stops reading there), so its end is not required.
    /// </summary>
    public static IReadOnlyList<TrackedFlow> Parse(string xml, int maxFlows, out bool more)
    {
        more = false;
        var start = xml.IndexOf("<conntrack", StringComparison.Ordinal);
        if (start < 0)
        {
            return [];
        }

        var flows = new List<TrackedFlow>();
        try
        {
            using var text = new StringReader(xml[start..]);
            using var reader = XmlReader.Create(text, new XmlReaderSettings { DtdProcessing = DtdProcessing.Prohibit, XmlResolver = null, IgnoreWhitespace = true });
            reader.MoveToContent();
            if (reader.IsEmptyElement)
            {
                return flows;
            }

            reader.Read();
            while (!reader.EOF && reader.NodeType != XmlNodeType.EndElement)
            {
                if (reader.NodeType != XmlNodeType.Element || reader.Name != "flow")
                {
                    reader.Skip();
                    continue;
                }

                if (flows.Count >= maxFlows)
                {
                    more = true;
                    break;
                }

                // ReadFrom consumes exactly this flow, so memory is one flow's tree however large the table.
                if (XNode.ReadFrom(reader) is XElement flow && Parse(flow) is { } parsed)
                {
                    flows.Add(parsed);
                }
            }
        }
        catch (XmlException ex)
        {
            throw new FormatException($"conntrack printed XML that does not parse: {ex.Message}", ex);
        }

        return flows;
    }

    private static TrackedFlow? Parse(XElement flow)
    {
        // The first meta of each direction: a repeated one must not make one odd flow fail the whole collection.
        var metas = new Dictionary<string, XElement>(StringComparer.Ordinal);
        foreach (var meta in flow.Elements("meta"))
        {
            metas.TryAdd((string?)meta.Attribute("direction") ?? "", meta);
        }

        if (!metas.TryGetValue("original", out var original) || !metas.TryGetValue("independent", out var independent))
        {
            return null;
        }

        metas.TryGetValue("reply", out var reply);
        var layer3 = original.Element("layer3");
        var layer4 = original.Element("layer4");
        if (layer3 is null || !ulong.TryParse(independent.Element("id")?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return null;
        }

        return new TrackedFlow(
            id,
            (string?)layer4?.Attribute("protoname") ?? "unknown",
            layer3.Element("src")?.Value ?? "",
            Int(layer4?.Element("sport")) ?? 0,
            layer3.Element("dst")?.Value ?? "",
            Int(layer4?.Element("dport")) ?? 0,
            Long(original.Element("counters")?.Element("packets")),
            Long(original.Element("counters")?.Element("bytes")),
            Long(reply?.Element("counters")?.Element("packets")),
            Long(reply?.Element("counters")?.Element("bytes")),
            Long(independent.Element("timestamp")?.Element("start")),
            independent.Element("state")?.Value,
            independent.Element("assured") is not null,
            independent.Element("unreplied") is not null);
    }

    private static int? Int(XElement? element) => int.TryParse(element?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    private static long? Long(XElement? element) => long.TryParse(element?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;
}
