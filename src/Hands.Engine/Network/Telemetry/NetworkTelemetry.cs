using System.Net;
using Hands.Engine.Hosting;
using Hands.Engine.Storage;
using Hands.Sandboxes.Concurrency;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network.Telemetry;

/// <summary>
/// Per-sandbox network telemetry from what the host sees in the sandbox's own network namespace: its connection
/// tracking table (connections the sandbox opened, with the kernel's byte and packet counters) and the counters of its
/// egress policy's refusing rules (what the policy denied). Collected by polling (<see cref="CollectAsync"/>: every
/// interval, before every read of a live sandbox, and before its namespace is removed), stored in SQLite
/// (<see cref="NetworkTelemetryStore"/>) so it is readable after the sandbox terminates and after an engine restart.
/// Nothing from inside the sandbox is trusted or read: no payload, no guest process.
/// </summary>
internal sealed class NetworkTelemetry(string databasePath, TimeProvider time, TimeSpan interval, ILogger logger) : IDisposable
{
    internal const string PolicyMarker = "@@hands-policy@@";
    private const string NoConntrackMarker = "@@hands-no-conntrack@@";
    private const string ConntrackFailedMarker = "@@hands-conntrack-failed@@";
    internal const string CountMarker = "@@hands-conntrack-count@@";

    /// <summary>
    /// Tracked connections read per sandbox and collection. A sandbox can fill the host's whole table (262,144 entries,
    /// some 200 MB of XML): beyond this many the rest is not read and a <c>gap</c> (<c>conntrack_over_cap</c>) says so.
    /// </summary>
    public const int MaxFlowsPerCollection = 4096;

    /// <summary>
    /// A connection whose counters move gets a <c>connection_update</c> at most this often (a TCP state change always
    /// gets one, its end always carries the final counters): one per poll let a busy sandbox evict its own history.
    /// </summary>
    public static readonly TimeSpan UpdateInterval = TimeSpan.FromMinutes(5);

    /// <summary>Longest one sandbox's collection may take (waiting for its lock included) before it is a gap.</summary>
    public static readonly TimeSpan CollectionTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// One namespace's view, in one process: the table's size (<c>conntrack -C</c>), at most
    /// <see cref="MaxFlowsPerCollection"/> flows as XML (conntrack prints a header line, <c>&lt;conntrack&gt;</c>, then one
    /// flow per line; <c>head</c> keeps one more to tell a full table from an exact fit and stops conntrack there), then
    /// the filter table with counters.
    /// </summary>
    private static readonly string CollectScript =
        "if command -v conntrack >/dev/null 2>&1; then " +
        $"if n=$(conntrack -C 2>/dev/null); then echo {CountMarker}$n; conntrack -L -o xml,id,ktimestamp 2>/dev/null | head -n {MaxFlowsPerCollection + 3}; else echo {ConntrackFailedMarker}; fi; " +
        $"else echo {NoConntrackMarker}; fi; echo {PolicyMarker}; iptables-save -c -t filter";

    private readonly NetworkTelemetryStore _store = new(databasePath);
    private readonly KeyedLock<string> _locks = new(StringComparer.Ordinal);

    /// <summary>Sandboxes whose last collection found more than the cap, so the gap is recorded once per episode, not per poll.</summary>
    private readonly HashSet<string> _overCap = new(StringComparer.Ordinal);

    /// <summary>This engine run's collector session (a restart starts a new one).</summary>
    public string CaptureSession { get; } = "cs-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>How often every live sandbox is collected.</summary>
    public TimeSpan Interval => interval;

    private long Now => time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>
    /// Reads the namespace once and stores what changed since the last time: new connections, counters that moved,
    /// connections the kernel no longer tracks, refused packets. A namespace that is gone is skipped silently; a
    /// collection that fails is recorded once as a gap.
    /// </summary>
    public async Task CollectAsync(SandboxRecord record, string namespaceFile, IPAddress sandboxAddress, CancellationToken cancellationToken)
    {
        // Bounded, so that neither a stuck nsenter nor a slow store holds the sandbox's lock (and a PATCH waiting on it).
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CollectionTimeout);
        try
        {
            using (await _locks.AcquireAsync(record.Id, timeout.Token).ConfigureAwait(false))
            {
                await CollectLockedAsync(record, namespaceFile, sandboxAddress, timeout.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // Any failure (a tool that cannot run, a store error, one odd entry, the timeout) is this sandbox's gap, never
            // its caller's: the periodic pass goes on to the next sandbox, a read still answers, a PATCH still applies.
            var detail = ex is OperationCanceledException ? "collection_timed_out" : "collection_failed";
            try
            {
                RecordGap(record, detail, ex.Message);
            }
            catch (Exception storeFailure) when (storeFailure is not OperationCanceledException)
            {
                logger.LogWarning("network telemetry of {Id}: {Detail}: {Error}; the gap could not be stored: {StoreError}", record.Id, detail, ex.Message, storeFailure.Message);
            }
        }
    }

    /// <summary>The program that enters the namespace (a test names one that does not exist).</summary>
    internal string NsenterProgram { get; init; } = "nsenter";

    private async Task CollectLockedAsync(SandboxRecord record, string namespaceFile, IPAddress sandboxAddress, CancellationToken cancellationToken)
    {
        if (!File.Exists(namespaceFile))
        {
            return;
        }

        var result = await CommandRunner.RunAsync(NsenterProgram, [$"--net={namespaceFile}", "/bin/sh", "-c", CollectScript], cancellationToken: cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0 || !result.Stdout.Contains(PolicyMarker, StringComparison.Ordinal))
        {
            if (File.Exists(namespaceFile) && SandboxNetwork.Exists(namespaceFile))
            {
                RecordGap(record, "collection_failed", result.Stderr);
            }

            return;
        }

        Ingest(record, sandboxAddress, result.Stdout);
    }

    /// <summary>Stores what one run of <see cref="CollectScript"/> printed (its caller holds the sandbox's lock).</summary>
    internal void Ingest(SandboxRecord record, IPAddress sandboxAddress, string output)
    {
        var split = output.IndexOf(PolicyMarker, StringComparison.Ordinal);
        var conntrack = output[..split];
        var rules = output[(split + PolicyMarker.Length)..];
        IReadOnlyList<TrackedFlow>? flows = null;
        long? overCap = null;
        var conntrackProblem = conntrack.Contains(NoConntrackMarker, StringComparison.Ordinal) ? "conntrack_not_installed"
            : conntrack.Contains(ConntrackFailedMarker, StringComparison.Ordinal) ? "conntrack_failed" : null;
        if (conntrackProblem is null)
        {
            try
            {
                flows = ConntrackTable.Parse(conntrack, MaxFlowsPerCollection, out var more);
                var count = TableSize(conntrack);
                if (more || count > MaxFlowsPerCollection)
                {
                    overCap = Math.Max(count ?? 0, MaxFlowsPerCollection + 1L);
                }
            }
            catch (FormatException ex)
            {
                logger.LogWarning("network telemetry of {Id}: {Error}", record.Id, ex.Message);
                conntrackProblem = "conntrack_unreadable";
            }
        }

        Store(record, sandboxAddress, flows, overCap, PolicyCounters.Parse(rules), conntrackProblem);
    }

    private static long? TableSize(string conntrack)
    {
        var at = conntrack.IndexOf(CountMarker, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var digits = conntrack[(at + CountMarker.Length)..].TakeWhile(char.IsAsciiDigit).ToArray();
        return long.TryParse(digits, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var count) ? count : null;
    }

    /// <summary>
    /// The namespace is gone (the sandbox terminated): the connections still tracked end here, with the counters of the
    /// last collection (marked <c>namespace_removed</c>; the destinations count them as degraded).
    /// </summary>
    public async Task EndCaptureAsync(SandboxRecord record)
    {
        using (await _locks.AcquireAsync(record.Id, CancellationToken.None).ConfigureAwait(false))
        {
            var now = Now;
            var live = _store.Live(record.Id);
            var ended = live.Values.Select(last => Observed(last, NetworkEventKinds.ConnectionDestroy, "namespace_removed", now)).ToList();
            var capture = _store.Capture(record.Id);
            _store.Commit(record.Id, ended, new LiveChanges(new Dictionary<string, NetworkEvent>(), [.. live.Keys]), new Dictionary<string, (long, long)>(),
                new CaptureState(capture?.LastObservedAtMs ?? now, capture?.CaptureSession ?? CaptureSession, capture?.Failing ?? false));
        }
    }

    /// <summary>A page of events; <c>next_cursor</c> is set when more events in the window follow this page.</summary>
    public NetworkEventsResponse Events(SandboxRecord record, NetworkQueryParameters query)
    {
        var events = _store.Events(record.Id, query.FromMs, query.ToMs, query.AfterSequence, query.Limit + 1);
        var more = events.Count > query.Limit;
        if (more)
        {
            events.RemoveAt(events.Count - 1);
        }

        return new NetworkEventsResponse
        {
            Events = events,
            NextCursor = more ? NetworkQueryParameters.Cursor.Encode(record.Id, events[^1].Sequence) : null,
            FromMs = query.FromMs,
            ToMs = query.ToMs,
        };
    }

    /// <summary>
    /// Connections per destination over whole UTC minutes: each connection counted once, with the kernel's counters as
    /// last observed; the most-connected <c>limit</c> destinations, <c>truncated</c> when there were more.
    /// </summary>
    public NetworkDestinationsResponse Destinations(SandboxRecord record, NetworkQueryParameters query)
    {
        var from = query.FromMs / 60_000 * 60_000;
        var to = (query.ToMs / 60_000 * 60_000) + 59_999;
        var latest = new Dictionary<string, NetworkEvent>(StringComparer.Ordinal);
        foreach (var observed in _store.ConnectionEvents(record.Id, from, to))
        {
            latest[observed.ConnectionId] = observed;
        }

        var groups = latest.Values
            .GroupBy(e => (e.DestinationIp, e.DestinationPort, e.Transport))
            .Select(g => new NetworkDestination
            {
                DestinationIp = g.Key.DestinationIp,
                DestinationPort = g.Key.DestinationPort,
                Transport = g.Key.Transport,
                ObservedConnections = g.Count(),
                OriginalBytes = g.Any(e => e.OriginalBytes is not null) ? g.Sum(e => e.OriginalBytes ?? 0) : null,
                ReplyBytes = g.Any(e => e.ReplyBytes is not null) ? g.Sum(e => e.ReplyBytes ?? 0) : null,
                UnknownByteConnections = g.Count(e => e.OriginalBytes is null || e.ReplyBytes is null),
                DegradedConnections = g.Count(e => e.Detail == "namespace_removed"),
            })
            .OrderByDescending(d => d.ObservedConnections).ThenBy(d => d.DestinationIp, StringComparer.Ordinal).ThenBy(d => d.DestinationPort).ThenBy(d => d.Transport, StringComparer.Ordinal)
            .ToList();
        return new NetworkDestinationsResponse
        {
            Destinations = [.. groups.Take(query.Limit)],
            Truncated = groups.Count > query.Limit,
            FromMs = from,
            ToMs = to,
        };
    }

    /// <summary>
    /// <c>recent</c> when the last collection succeeded within three intervals (or the sandbox ended after one did),
    /// <c>stale</c> when it is older or failing, <c>unknown</c> when there has been none.
    /// </summary>
    public NetworkCaptureStatus Status(SandboxRecord record)
    {
        var capture = _store.Capture(record.Id);
        var limitations = new List<string>
        {
            $"polled every {interval.TotalSeconds:0.###} s and before each read: a connection opened and forgotten by the kernel between two polls is missed (a closed TCP connection stays tracked about 2 minutes, so it is seen)",
            "byte and packet counters are the kernel's per-connection totals including IP and TCP headers, as of the last poll",
            "a refusal is counted per refused packet by the policy rule that refused it: its destination is the rule's, without a port",
            "no DNS packet capture and no egress proxy: sandboxes resolve nothing through the engine",
            "connections into the sandbox (the engine's own, and the ingress) are not recorded",
        };
        if (capture is null)
        {
            return new NetworkCaptureStatus { State = "unknown", Coverage = [], Limitations = limitations };
        }

        var fresh = !capture.Failing && (!record.IsAlive || Now - capture.LastObservedAtMs <= 3 * (long)interval.TotalMilliseconds);
        if (capture.Failing)
        {
            limitations.Insert(0, "the last collection failed: see the gap events");
        }

        if (!record.IsAlive)
        {
            limitations.Insert(0, "the sandbox is terminated: nothing more will be observed");
        }

        return new NetworkCaptureStatus
        {
            State = fresh ? "recent" : "stale",
            LastObservedAtMs = capture.LastObservedAtMs,
            AllocationId = record.Id,
            Coverage = [NetworkObservationSources.Conntrack, NetworkObservationSources.Policy, NetworkObservationSources.Collector],
            Limitations = limitations,
        };
    }

    /// <summary>Retention: events older than <see cref="NetworkTelemetryStore.Retention"/>, and state of sandboxes no longer alive.</summary>
    public void Prune(IEnumerable<string> aliveSandboxIds) => _store.Prune(Now, aliveSandboxIds.ToHashSet(StringComparer.Ordinal));

    private void Store(SandboxRecord record, IPAddress sandboxAddress, IReadOnlyList<TrackedFlow>? flows, long? overCap, IReadOnlyList<PolicyCounter> counters, string? conntrackProblem)
    {
        var now = Now;
        var events = new List<NetworkEvent>();
        LiveChanges? liveChanges = null;
        var previous = _store.Capture(record.Id);
        if (overCap is { } tableSize)
        {
            if (_overCap.Add(record.Id))
            {
                var gap = Gap(record, "conntrack_over_cap", now);
                gap.ObservedConnections = tableSize;
                events.Add(gap);
            }
        }
        else
        {
            _overCap.Remove(record.Id);
        }

        if (flows is not null)
        {
            var live = _store.Live(record.Id);
            var nextLive = new Dictionary<string, NetworkEvent>(StringComparer.Ordinal);
            var changed = new Dictionary<string, NetworkEvent>(StringComparer.Ordinal);
            var source = sandboxAddress.ToString();
            foreach (var flow in flows.Where(f => f.SourceIp == source && !(IPAddress.TryParse(f.DestinationIp, out var d) && IPAddress.IsLoopback(d))))
            {
                var current = FromFlow(record, flow, now);
                if (!live.TryGetValue(flow.ConnectionId, out var last))
                {
                    current.EventKind = NetworkEventKinds.ConnectionNew;
                    events.Add(current);
                }
                else if (current.TcpState != last.TcpState || (Moved(current, last) && now - last.ObservedAtMs >= (long)UpdateInterval.TotalMilliseconds))
                {
                    current.EventKind = NetworkEventKinds.ConnectionUpdate;
                    events.Add(current);
                }
                else if (Moved(current, last))
                {
                    // Counters only: kept (so its destroy carries the final ones) without an event; ObservedAtMs stays
                    // that of its last event, which is what UpdateInterval is measured from.
                    current.EventKind = last.EventKind;
                    current.ObservedAtMs = last.ObservedAtMs;
                }
                else
                {
                    current = last;
                }

                nextLive[flow.ConnectionId] = current;
                if (!ReferenceEquals(current, last))
                {
                    changed[flow.ConnectionId] = current;
                }
            }

            // Over the cap the unread rest of the table may hold them still: not seen is not gone.
            var gone = overCap is null ? live.Where(l => !nextLive.ContainsKey(l.Key)).ToList() : [];
            events.AddRange(gone.Select(l => Observed(l.Value, NetworkEventKinds.ConnectionDestroy, "entry_expired", now)));
            liveChanges = new LiveChanges(changed, [.. gone.Select(l => l.Key)]);
        }
        else if (previous is not { Failing: true })
        {
            events.Add(Gap(record, conntrackProblem ?? "conntrack_failed", now));
        }

        var counted = _store.Counters(record.Id);
        var nextCounters = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        foreach (var counter in counters)
        {
            var (packets, bytes) = counted.GetValueOrDefault(counter.Rule);
            // Counters start again from 0 when the policy is applied anew: then all of them are new.
            var (newPackets, newBytes) = counter.Packets >= packets ? (counter.Packets - packets, counter.Bytes - bytes) : (counter.Packets, counter.Bytes);
            if (newPackets > 0)
            {
                events.Add(Refusal(record, counter, newPackets, Math.Max(0, newBytes), now));
            }

            nextCounters[counter.Rule] = (counter.Packets, counter.Bytes);
        }

        _store.Commit(record.Id, events, liveChanges, nextCounters, new CaptureState(now, CaptureSession, flows is null));
    }

    private void RecordGap(SandboxRecord record, string detail, string error)
    {
        logger.LogWarning("network telemetry of {Id}: {Detail}: {Error}", record.Id, detail, error.Trim());
        var previous = _store.Capture(record.Id);
        var events = previous is { Failing: true } ? [] : new List<NetworkEvent> { Gap(record, detail, Now) };
        _store.Commit(record.Id, events, null, null, new CaptureState(previous?.LastObservedAtMs ?? Now, CaptureSession, Failing: true));
    }

    private static bool Moved(NetworkEvent current, NetworkEvent last) =>
        current.OriginalBytes != last.OriginalBytes || current.ReplyBytes != last.ReplyBytes
        || current.OriginalPackets != last.OriginalPackets || current.ReplyPackets != last.ReplyPackets || current.TcpState != last.TcpState;

    private NetworkEvent Base(SandboxRecord record, long now) => new()
    {
        Namespace = record.Namespace,
        SandboxId = record.Id,
        ExecutorId = Environment.MachineName,
        AllocationId = record.Id,
        CaptureSession = CaptureSession,
        ObservedAtMs = now,
    };

    private NetworkEvent FromFlow(SandboxRecord record, TrackedFlow flow, long now)
    {
        var observed = Base(record, now);
        observed.ConnectionId = flow.ConnectionId;
        observed.ObservedConnections = 1;
        observed.SourceIp = flow.SourceIp;
        observed.SourcePort = flow.SourcePort;
        observed.DestinationIp = flow.DestinationIp;
        observed.DestinationPort = flow.DestinationPort;
        observed.Transport = flow.Transport;
        observed.OriginalBytes = flow.OriginalBytes;
        observed.ReplyBytes = flow.ReplyBytes;
        observed.OriginalPackets = flow.OriginalPackets;
        observed.ReplyPackets = flow.ReplyPackets;
        observed.KernelStartedAtNs = flow.StartedAtNs;
        observed.ConntrackStatus = flow.Status;
        observed.TcpState = flow.TcpState;
        observed.Detail = flow.TcpStateName?.ToLowerInvariant() ?? "tracked";
        observed.ObservationSource = NetworkObservationSources.Conntrack;
        // Tracked means its first packet left the namespace: the egress rules let it through.
        observed.PolicyAction = NetworkPolicyActions.Allow;
        return observed;
    }

    /// <summary>A copy of <paramref name="last"/> as a new observation of another kind.</summary>
    private NetworkEvent Observed(NetworkEvent last, string kind, string detail, long now)
    {
        var copy = System.Text.Json.JsonSerializer.Deserialize(System.Text.Json.JsonSerializer.Serialize(last, SandboxesJsonContext.Default.NetworkEvent), SandboxesJsonContext.Default.NetworkEvent)!;
        copy.Sequence = 0;
        copy.EventKind = kind;
        copy.Detail = detail;
        copy.ObservedAtMs = now;
        copy.CaptureSession = CaptureSession;
        return copy;
    }

    private NetworkEvent Refusal(SandboxRecord record, PolicyCounter counter, long packets, long bytes, long now)
    {
        var observed = Base(record, now);
        var target = counter.Target.EndsWith("/32", StringComparison.Ordinal) ? counter.Target[..^3] : counter.Target;
        observed.EventKind = NetworkEventKinds.Policy;
        observed.ConnectionId = $"{counter.Rule}@{now}";
        observed.ObservedConnections = packets;
        observed.SourceIp = record.Slot > 0 ? new NetworkSlot(record.Slot).SandboxAddress.ToString() : "";
        observed.DestinationIp = target;
        observed.Transport = "ip";
        observed.OriginalPackets = packets;
        observed.OriginalBytes = bytes;
        observed.Detail = counter.Detail;
        observed.ObservationSource = NetworkObservationSources.Policy;
        observed.PolicyAction = NetworkPolicyActions.Deny;
        return observed;
    }

    private NetworkEvent Gap(SandboxRecord record, string detail, long now)
    {
        var observed = Base(record, now);
        observed.EventKind = NetworkEventKinds.Gap;
        observed.ConnectionId = $"gap@{now}";
        observed.Detail = detail;
        observed.ObservationSource = NetworkObservationSources.Collector;
        return observed;
    }

    public void Dispose() => _store.Dispose();
}
