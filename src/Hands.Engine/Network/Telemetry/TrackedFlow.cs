namespace Hands.Engine.Network.Telemetry;

/// <summary>One entry of a network namespace's connection-tracking table, as <c>conntrack -L -o xml,id,ktimestamp</c> shows it.</summary>
internal sealed record TrackedFlow(
    ulong Id,
    string Transport,
    string SourceIp,
    int SourcePort,
    string DestinationIp,
    int DestinationPort,
    long? OriginalPackets,
    long? OriginalBytes,
    long? ReplyPackets,
    long? ReplyBytes,
    long? StartedAtNs,
    string? TcpStateName,
    bool Assured,
    bool Unreplied)
{
    /// <summary>
    /// Stable while the kernel tracks it: the entry's id is reused after it is freed, so the start time (the table's
    /// timestamp extension) goes with it.
    /// </summary>
    public string ConnectionId => StartedAtNs is { } start ? $"ct-{Id}-{start}" : $"ct-{Id}";

    /// <summary>The kernel's <c>IPS_*</c> bits this view shows: seen reply (2), assured (4), confirmed (8, every listed entry is).</summary>
    public uint Status => (Unreplied ? 0u : 2u) | (Assured ? 4u : 0u) | 8u;

    /// <summary>The kernel's <c>enum tcp_conntrack</c> number for <see cref="TcpStateName"/>; null for other transports.</summary>
    public int? TcpState => TcpStateName switch
    {
        null => null,
        "NONE" => 0,
        "SYN_SENT" => 1,
        "SYN_RECV" => 2,
        "ESTABLISHED" => 3,
        "FIN_WAIT" => 4,
        "CLOSE_WAIT" => 5,
        "LAST_ACK" => 6,
        "TIME_WAIT" => 7,
        "CLOSE" => 8,
        "SYN_SENT2" => 9,
        _ => null,
    };

    /// <summary>True when the counters differ from <paramref name="earlier"/>'s.</summary>
    public bool CountersMovedSince(TrackedFlow earlier) =>
        OriginalPackets != earlier.OriginalPackets || OriginalBytes != earlier.OriginalBytes || ReplyPackets != earlier.ReplyPackets || ReplyBytes != earlier.ReplyBytes;
}
