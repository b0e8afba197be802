using Hands.Engine.Network.Telemetry;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Engine.Tests.Rules;

/// <summary>
/// The network telemetry's parsing, query rules, paging and summaries on their own: conntrack's XML, iptables-save's
/// counters, the query's limits and cursor, and pages over a real SQLite store while events keep arriving. No engine.
/// </summary>
[Trait("Tier", "Unit")]
public sealed class NetworkTelemetryRulesTests : IDisposable
{
    private const string Sandbox = "sbx1";
    private readonly string _database = Path.Combine(Path.GetTempPath(), $"hands-net-{Guid.NewGuid():N}.db");
    private readonly FakeTimeProvider _time = new(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));

    [Fact]
    public void Conntrack_xml_gives_flows_with_counters_start_time_and_state()
    {
        const string xml = """
            <?xml version="1.0" encoding="utf-8"?>
            <conntrack>
            <flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.200.0.6</src><dst>10.200.0.5</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>32998</sport><dport>5555</dport></layer4><counters><packets>6</packets><bytes>1320</bytes></counters></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>10.200.0.5</src><dst>10.200.0.6</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>5555</sport><dport>32998</dport></layer4><counters><packets>4</packets><bytes>226</bytes></counters></meta><meta direction="independent"><state>TIME_WAIT</state><timeout>119</timeout><mark>0</mark><use>1</use><id>4204420688</id><assured/><timestamp><start>1796060513258932907</start></timestamp><deltatime>0</deltatime></meta></flow>
            <flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.200.0.6</src><dst>10.200.0.5</dst></layer3><layer4 protonum="17" protoname="udp"><sport>4000</sport><dport>53</dport></layer4></meta><meta direction="reply"><layer3 protonum="2" protoname="ipv4"><src>10.200.0.5</src><dst>10.200.0.6</dst></layer3><layer4 protonum="17" protoname="udp"><sport>53</sport><dport>4000</dport></layer4></meta><meta direction="independent"><timeout>20</timeout><id>7</id><unreplied/></meta></flow>
            </conntrack>
            """;
        var flows = ConntrackTable.Parse("conntrack v1.4.7: 2 flow entries have been shown.\n" + xml);

        Assert.Equal(2, flows.Count);
        var tcp = flows[0];
        Assert.Equal(("tcp", "10.200.0.6", 32998, "10.200.0.5", 5555), (tcp.Transport, tcp.SourceIp, tcp.SourcePort, tcp.DestinationIp, tcp.DestinationPort));
        Assert.Equal((6L, 1320L, 4L, 226L), (tcp.OriginalPackets!.Value, tcp.OriginalBytes!.Value, tcp.ReplyPackets!.Value, tcp.ReplyBytes!.Value));
        Assert.Equal(("ct-4204420688-1796060513258932907", 7, 2u | 4u | 8u), (tcp.ConnectionId, tcp.TcpState!.Value, tcp.Status));
        var udp = flows[1];
        // No accounting: the counters are unknown, not zero; no reply yet, no TCP state.
        Assert.Equal(((long?)null, (long?)null, (int?)null, 8u, "ct-7"), (udp.OriginalBytes, udp.ReplyBytes, udp.TcpState, udp.Status, udp.ConnectionId));
        Assert.Empty(ConntrackTable.Parse(""));
        Assert.Throws<FormatException>(() => ConntrackTable.Parse("<conntrack><flow>"));
    }

    [Fact]
    public void A_table_over_the_cap_reads_only_the_cap_records_one_gap_and_ends_nothing_unseen()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        var address = System.Net.IPAddress.Parse("10.200.0.6");
        // What the collector's head leaves of a 5000-entry table: the cap plus one flow, the document not closed.
        var full = Output(5000, NetworkTelemetry.MaxFlowsPerCollection + 1, closed: false);

        telemetry.Ingest(record, address, full);
        var all = AllEvents(telemetry, record);
        Assert.Equal(NetworkTelemetry.MaxFlowsPerCollection, all.Count(e => e.EventKind == NetworkEventKinds.ConnectionNew));
        var gap = Assert.Single(all, e => e.EventKind == NetworkEventKinds.Gap);
        Assert.Equal(("conntrack_over_cap", 5000L), (gap.Detail, gap.ObservedConnections));

        // Still over the cap, nothing moved: no second gap, and the flows past the cap are not taken for ended.
        _time.Advance(TimeSpan.FromSeconds(5));
        telemetry.Ingest(record, address, Output(5000, NetworkTelemetry.MaxFlowsPerCollection + 1, closed: false));
        Assert.Equal(all.Count, AllEvents(telemetry, record).Count);

        // Back under the cap: what is not there has ended.
        _time.Advance(TimeSpan.FromSeconds(5));
        telemetry.Ingest(record, address, Output(2, 2, closed: true));
        var after = AllEvents(telemetry, record);
        Assert.Equal(NetworkTelemetry.MaxFlowsPerCollection - 2, after.Count(e => e.EventKind == NetworkEventKinds.ConnectionDestroy));
        Assert.Single(after, e => e.EventKind == NetworkEventKinds.Gap);
    }

    [Fact]
    public void Counters_that_move_give_an_update_only_every_update_interval_or_on_a_state_change_and_the_end_carries_the_last()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        var address = System.Net.IPAddress.Parse("10.200.0.6");
        var bytes = 60;
        string One(string state) => Output(1, 1, closed: true, state: state, bytes: bytes);

        telemetry.Ingest(record, address, One("ESTABLISHED"));
        for (var poll = 0; poll < 10; poll++)
        {
            _time.Advance(TimeSpan.FromSeconds(5));
            bytes += 100;
            telemetry.Ingest(record, address, One("ESTABLISHED"));
        }

        Assert.DoesNotContain(AllEvents(telemetry, record), e => e.EventKind == NetworkEventKinds.ConnectionUpdate);
        _time.Advance(NetworkTelemetry.UpdateInterval);
        bytes += 100;
        telemetry.Ingest(record, address, One("ESTABLISHED"));
        Assert.Equal(bytes, Assert.Single(AllEvents(telemetry, record), e => e.EventKind == NetworkEventKinds.ConnectionUpdate).OriginalBytes);
        _time.Advance(TimeSpan.FromSeconds(5));
        bytes += 100;
        telemetry.Ingest(record, address, One("FIN_WAIT"));
        Assert.Equal(2, AllEvents(telemetry, record).Count(e => e.EventKind == NetworkEventKinds.ConnectionUpdate));
        _time.Advance(TimeSpan.FromSeconds(5));
        bytes += 100;
        telemetry.Ingest(record, address, One("FIN_WAIT"));
        _time.Advance(TimeSpan.FromSeconds(5));
        telemetry.Ingest(record, address, Output(0, 0, closed: true));
        Assert.Equal(bytes, Assert.Single(AllEvents(telemetry, record), e => e.EventKind == NetworkEventKinds.ConnectionDestroy).OriginalBytes);
    }

    [Fact]
    public void Trimming_a_sandbox_history_leaves_a_gap_counting_what_went()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        using var store = new NetworkTelemetryStore(_database);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        var at = _time.GetUtcNow().ToUnixTimeMilliseconds();
        Append(store, NetworkTelemetryStore.MaxEventsPerSandbox, at);
        Assert.DoesNotContain(AllEvents(telemetry, record), e => e.EventKind == NetworkEventKinds.Gap);

        Append(store, 5, at);
        var events = AllEvents(telemetry, record);
        Assert.Equal(NetworkTelemetryStore.MaxEventsPerSandbox, events.Count);
        var gap = Assert.Single(events, e => e.EventKind == NetworkEventKinds.Gap);
        Assert.Equal(("events_dropped", 6L), (gap.Detail, gap.ObservedConnections));
    }

    [Fact]
    public async Task A_collection_that_cannot_run_its_tool_is_a_gap_not_an_exception()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance) { NsenterProgram = "/nonexistent/nsenter" };
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        // Any existing file will do as the namespace: the program that would enter it cannot start.
        var namespaceFile = _database;

        await telemetry.CollectAsync(record, namespaceFile, System.Net.IPAddress.Parse("10.200.0.6"), CancellationToken.None);
        await telemetry.CollectAsync(record, namespaceFile, System.Net.IPAddress.Parse("10.200.0.6"), CancellationToken.None);

        // One gap per failing episode, and the status says it is failing.
        Assert.Equal("collection_failed", Assert.Single(AllEvents(telemetry, record), e => e.EventKind == NetworkEventKinds.Gap).Detail);
        Assert.Equal("stale", telemetry.Status(record).State);
    }

    [Fact]
    public void A_flow_with_a_repeated_direction_is_read_with_the_first_not_refused()
    {
        const string xml = """
            <conntrack>
            <flow><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>10.200.0.6</src><dst>10.200.0.5</dst></layer3><layer4 protonum="6" protoname="tcp"><sport>1</sport><dport>2</dport></layer4></meta><meta direction="original"><layer3 protonum="2" protoname="ipv4"><src>9.9.9.9</src><dst>9.9.9.9</dst></layer3></meta><meta direction="independent"><id>5</id></meta></flow>
            </conntrack>
            """;

        var flow = Assert.Single(ConntrackTable.Parse(xml));
        Assert.Equal(("10.200.0.6", "10.200.0.5"), (flow.SourceIp, flow.DestinationIp));
    }

    /// <summary>What the collect script prints: the table size, the XML (<paramref name="shown"/> flows), the policy marker, no rules.</summary>
    private static string Output(int tableSize, int shown, bool closed, string state = "ESTABLISHED", int bytes = 60)
    {
        var text = new System.Text.StringBuilder();
        text.Append(NetworkTelemetry.CountMarker).Append(tableSize).Append('\n');
        text.Append("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n");
        for (var i = 0; i < shown; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>10.200.0.6</src><dst>10.200.0.5</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><sport>{1024 + (i % 60000)}</sport><dport>80</dport></layer4><counters><packets>1</packets><bytes>{bytes}</bytes></counters></meta><meta direction=\"independent\"><state>{state}</state><id>{1 + i}</id></meta></flow>\n");
        }

        if (closed)
        {
            text.Append("</conntrack>\n");
        }

        return text.Append(NetworkTelemetry.PolicyMarker).Append('\n').ToString();
    }

    private static List<NetworkEvent> AllEvents(NetworkTelemetry telemetry, SandboxRecord record)
    {
        var events = new List<NetworkEvent>();
        long after = 0;
        while (true)
        {
            var page = telemetry.Events(record, new NetworkQueryParameters(0, long.MaxValue / 2, 500, after)).Events;
            if (page.Count == 0)
            {
                return events;
            }

            events.AddRange(page);
            after = page[^1].Sequence;
        }
    }

    [Fact]
    public void Only_tagged_refusals_are_counted_and_one_rule_listed_twice_is_summed()
    {
        const string save = """
            *filter
            :OUTPUT ACCEPT [0:0]
            [9:1486] -A OUTPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
            [2:120] -A OUTPUT -d 10.200.255.253/32 -m comment --comment hands:deny_out:10.200.255.253/32 -j REJECT --reject-with icmp-port-unreachable
            [1:60] -A OUTPUT -d 10.200.255.253/32 -m comment --comment "hands:deny_out:10.200.255.253/32" -j REJECT --reject-with icmp-port-unreachable
            [0:0] -A OUTPUT -d 10.200.0.0/16 -m comment --comment hands:sandbox_isolation:10.200.0.0/16 -j REJECT --reject-with icmp-port-unreachable
            [4:240] -A HANDS-POLICY -m comment --comment hands:not_in_allow_out: -j REJECT --reject-with icmp-port-unreachable
            [5:300] -A OUTPUT -d 192.0.2.1/32 -j REJECT --reject-with icmp-port-unreachable
            COMMIT
            """;
        var counters = PolicyCounters.Parse(save).ToDictionary(c => c.Rule);

        Assert.Equal(3, counters.Count);
        Assert.Equal(("deny_out", "10.200.255.253/32", 3L, 180L), (counters["hands:deny_out:10.200.255.253/32"].Detail, counters["hands:deny_out:10.200.255.253/32"].Target,
            counters["hands:deny_out:10.200.255.253/32"].Packets, counters["hands:deny_out:10.200.255.253/32"].Bytes));
        Assert.Equal(("not_in_allow_out", "", 4L), (counters["hands:not_in_allow_out:"].Detail, counters["hands:not_in_allow_out:"].Target, counters["hands:not_in_allow_out:"].Packets));
        Assert.Equal(PolicyCounters.Comment("deny_out", "10.200.255.253/32"), counters["hands:deny_out:10.200.255.253/32"].Rule);
    }

    [Theory]
    [InlineData("limit", "0", "limit must be a whole number from 1 to 500")]
    [InlineData("limit", "501", "limit must be a whole number from 1 to 500")]
    [InlineData("limit", "ten", "limit must be a whole number from 1 to 500")]
    [InlineData("limit", "", "limit must be a whole number from 1 to 500")]
    [InlineData("from_ms", "-5", "from_ms must be Unix milliseconds")]
    [InlineData("to_ms", "1.5", "to_ms must be Unix milliseconds")]
    [InlineData("cursor", "bm90LW91cnM", "cursor is not one this server issued")]
    public void A_bad_query_is_a_400_naming_the_parameter(string name, string value, string message)
    {
        var ex = Assert.Throws<EngineException>(() => NetworkQueryParameters.Parse(n => n == name ? value : null, Sandbox, 10_000_000, allowCursor: true));
        Assert.Equal(400, ex.Status);
        Assert.StartsWith(message, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_window_defaults_to_the_last_hour_and_must_not_run_backwards()
    {
        var defaults = NetworkQueryParameters.Parse(_ => null, Sandbox, 10_000_000, allowCursor: true);
        Assert.Equal(new NetworkQueryParameters(10_000_000 - 3_600_000, 10_000_000, 100, 0), defaults);
        Assert.Equal(0, NetworkQueryParameters.Parse(_ => null, Sandbox, 1000, allowCursor: true).FromMs);
        var backwards = Assert.Throws<EngineException>(() => NetworkQueryParameters.Parse(n => n switch { "from_ms" => "20", "to_ms" => "10", _ => null }, Sandbox, 100, allowCursor: true));
        Assert.Equal((400, "from_ms (20) is after to_ms (10)"), (backwards.Status, backwards.Message));

        var cursor = NetworkQueryParameters.Cursor.Encode(Sandbox, 42);
        Assert.Equal(42, NetworkQueryParameters.Parse(n => n == "cursor" ? cursor : null, Sandbox, 100, allowCursor: true).AfterSequence);
        // A cursor is bound to its sandbox, and destinations take none.
        Assert.Equal(400, Assert.Throws<EngineException>(() => NetworkQueryParameters.Parse(n => n == "cursor" ? cursor : null, "other", 100, allowCursor: true)).Status);
        Assert.Equal(400, Assert.Throws<EngineException>(() => NetworkQueryParameters.Parse(n => n == "cursor" ? cursor : null, Sandbox, 100, allowCursor: false)).Status);
    }

    [Fact]
    public void Pages_return_every_event_once_in_order_while_new_ones_arrive()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        using var store = new NetworkTelemetryStore(_database);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        var start = _time.GetUtcNow().ToUnixTimeMilliseconds();
        Append(store, 7, start);
        Append(store, 3, start, sandbox: "someone-else");

        var seen = new List<long>();
        string? cursor = null;
        for (var page = 0; page < 10; page++)
        {
            var query = new NetworkQueryParameters(start, start + 60_000, 3, cursor is null ? 0 : NetworkQueryParameters.Cursor.Decode(cursor, Sandbox));
            var response = telemetry.Events(record, query);
            Assert.True(response.Events.Count <= 3);
            seen.AddRange(response.Events.Select(e => e.Sequence));
            Assert.All(response.Events, e => Assert.Equal(Sandbox, e.SandboxId));
            if (page == 0)
            {
                // Arriving after the first page: the cursor still means "after what you have", so they come later, once.
                Append(store, 2, start + 10);
            }

            cursor = response.NextCursor;
            if (cursor is null)
            {
                break;
            }
        }

        Assert.Equal(9, seen.Count);
        Assert.Equal(seen.Order().ToList(), seen);
        Assert.Equal(seen.Count, seen.Distinct().Count());
        // The window is applied: nothing observed after to_ms.
        Assert.Empty(telemetry.Events(record, new NetworkQueryParameters(start + 11, start + 60_000, 100, 0)).Events);
    }

    [Fact]
    public void Destinations_count_each_connection_once_with_its_latest_counters_and_report_truncation()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        using var store = new NetworkTelemetryStore(_database);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Terminated, Slot = 3 };
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        NetworkEvent Connection(string id, string kind, string ip, long? sent, long? received, string detail = "established") => new()
        {
            SandboxId = Sandbox, ConnectionId = id, EventKind = kind, ObservedAtMs = now, ObservationSource = NetworkObservationSources.Conntrack,
            DestinationIp = ip, DestinationPort = 443, Transport = "tcp", OriginalBytes = sent, ReplyBytes = received, Detail = detail, ObservedConnections = 1,
        };
        store.Commit(Sandbox, [
            Connection("a", NetworkEventKinds.ConnectionNew, "10.0.0.1", 100, 50),
            Connection("a", NetworkEventKinds.ConnectionUpdate, "10.0.0.1", 1000, 500),
            Connection("b", NetworkEventKinds.ConnectionNew, "10.0.0.1", 10, 5),
            Connection("b", NetworkEventKinds.ConnectionDestroy, "10.0.0.1", 20, 6, "namespace_removed"),
            Connection("c", NetworkEventKinds.ConnectionNew, "10.0.0.2", null, null),
            new NetworkEvent { SandboxId = Sandbox, EventKind = NetworkEventKinds.Policy, ObservationSource = NetworkObservationSources.Policy, ObservedAtMs = now, DestinationIp = "10.0.0.9", PolicyAction = "deny" },
        ], null, null, new CaptureState(now, "cs", false));

        var all = telemetry.Destinations(record, new NetworkQueryParameters(now, now, 100, 0));
        Assert.Equal((now / 60_000 * 60_000, (now / 60_000 * 60_000) + 59_999, false), (all.FromMs, all.ToMs, all.Truncated));
        var first = all.Destinations[0];
        Assert.Equal(("10.0.0.1", 2L, 1020L, 506L, 0L, 1L), (first.DestinationIp, first.ObservedConnections, first.OriginalBytes!.Value, first.ReplyBytes!.Value, first.UnknownByteConnections, first.DegradedConnections));
        var unknown = all.Destinations[1];
        Assert.Equal(("10.0.0.2", (long?)null, 1L), (unknown.DestinationIp, unknown.OriginalBytes, unknown.UnknownByteConnections));
        Assert.Equal(2, all.Destinations.Count); // refusals are events, not destinations

        var top = telemetry.Destinations(record, new NetworkQueryParameters(now, now, 1, 0));
        Assert.Equal(("10.0.0.1", true), (Assert.Single(top.Destinations).DestinationIp, top.Truncated));
    }

    [Fact]
    public void Status_is_unknown_before_any_collection_then_recent_then_stale()
    {
        using var telemetry = new NetworkTelemetry(_database, _time, TimeSpan.FromSeconds(5), NullLogger.Instance);
        using var store = new NetworkTelemetryStore(_database);
        var record = new SandboxRecord { Id = Sandbox, Namespace = "default", Status = SandboxStatus.Running, Slot = 3 };
        Assert.Equal(("unknown", (long?)null), (telemetry.Status(record).State, telemetry.Status(record).LastObservedAtMs));

        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        store.Commit(Sandbox, [], null, null, new CaptureState(now, "cs", false));
        var recent = telemetry.Status(record);
        Assert.Equal(("recent", now, Sandbox), (recent.State, recent.LastObservedAtMs!.Value, recent.AllocationId));
        Assert.Contains(NetworkObservationSources.Conntrack, recent.Coverage);
        _time.Advance(TimeSpan.FromSeconds(16));
        Assert.Equal("stale", telemetry.Status(record).State);
        store.Commit(Sandbox, [], null, null, new CaptureState(_time.GetUtcNow().ToUnixTimeMilliseconds(), "cs", Failing: true));
        Assert.Equal("stale", telemetry.Status(record).State);
    }

    private void Append(NetworkTelemetryStore store, int count, long at, string sandbox = Sandbox)
    {
        var events = Enumerable.Range(0, count).Select(i => new NetworkEvent
        {
            SandboxId = sandbox, EventKind = NetworkEventKinds.ConnectionNew, ObservationSource = NetworkObservationSources.Conntrack, ObservedAtMs = at, ConnectionId = $"c{i}",
        }).ToList();
        store.Commit(sandbox, events, null, null, new CaptureState(at, "cs", false));
    }

    public void Dispose()
    {
        foreach (var file in new[] { _database, _database + "-wal", _database + "-shm" })
        {
            File.Delete(file);
        }
    }
}
