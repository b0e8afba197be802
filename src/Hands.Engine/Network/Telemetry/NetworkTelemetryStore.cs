using System.Text.Json;
using Hands.Sandboxes.Models;
using Microsoft.Data.Sqlite;

namespace Hands.Engine.Network.Telemetry;

/// <summary>What the collector last knew of a sandbox: when it last observed, in which session, and whether it is failing.</summary>
internal sealed record CaptureState(long LastObservedAtMs, string CaptureSession, bool Failing);

/// <summary>
/// What changed in the connections being tracked: rows to write and rows to delete. Only these are written, so a
/// collection over thousands of unchanged connections does not rewrite them all.
/// </summary>
internal sealed record LiveChanges(IReadOnlyDictionary<string, NetworkEvent> Upserts, IReadOnlyCollection<string> Removals);

/// <summary>
/// The network telemetry's tables in the engine's database (<c>engine.db</c>, its own connection): the event stream,
/// and the collector's state per sandbox (connections it is tracking, the refusal counters it has counted, its last
/// observation), so that an engine restart neither repeats nor loses an event. Kept after a sandbox terminates, within
/// <see cref="MaxEventsPerSandbox"/> and <see cref="Retention"/>.
/// </summary>
internal sealed class NetworkTelemetryStore : IDisposable
{
    /// <summary>Newest events kept per sandbox (an <c>events_dropped</c> gap included); older ones go first.</summary>
    public const int MaxEventsPerSandbox = 20_000;

    /// <summary>How long an event is kept.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    public NetworkTelemetryStore(string path)
    {
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA busy_timeout = 5000;
            CREATE TABLE IF NOT EXISTS network_events (sequence INTEGER PRIMARY KEY AUTOINCREMENT, sandbox_id TEXT NOT NULL, observed_at_ms INTEGER NOT NULL, record TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS network_events_by_sandbox ON network_events (sandbox_id, sequence);
            CREATE INDEX IF NOT EXISTS network_events_by_time ON network_events (observed_at_ms);
            CREATE TABLE IF NOT EXISTS network_live (sandbox_id TEXT NOT NULL, connection_id TEXT NOT NULL, record TEXT NOT NULL, PRIMARY KEY (sandbox_id, connection_id));
            CREATE TABLE IF NOT EXISTS network_counters (sandbox_id TEXT NOT NULL, rule TEXT NOT NULL, packets INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (sandbox_id, rule));
            CREATE TABLE IF NOT EXISTS network_capture (sandbox_id TEXT PRIMARY KEY, last_observed_at_ms INTEGER NOT NULL, capture_session TEXT NOT NULL, failing INTEGER NOT NULL);
            """);
    }

    /// <summary>The connections being tracked, by connection id, each as its latest event.</summary>
    public Dictionary<string, NetworkEvent> Live(string sandboxId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT connection_id, record FROM network_live WHERE sandbox_id = $s", ("$s", sandboxId));
            using var reader = command.ExecuteReader();
            var live = new Dictionary<string, NetworkEvent>(StringComparer.Ordinal);
            while (reader.Read())
            {
                live[reader.GetString(0)] = Deserialize(reader.GetString(1));
            }

            return live;
        }
    }

    /// <summary>The refusal counters as last counted, by rule.</summary>
    public Dictionary<string, (long Packets, long Bytes)> Counters(string sandboxId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT rule, packets, bytes FROM network_counters WHERE sandbox_id = $s", ("$s", sandboxId));
            using var reader = command.ExecuteReader();
            var counters = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
            while (reader.Read())
            {
                counters[reader.GetString(0)] = (reader.GetInt64(1), reader.GetInt64(2));
            }

            return counters;
        }
    }

    public CaptureState? Capture(string sandboxId)
    {
        lock (_gate)
        {
            using var command = Command("SELECT last_observed_at_ms, capture_session, failing FROM network_capture WHERE sandbox_id = $s", ("$s", sandboxId));
            using var reader = command.ExecuteReader();
            return reader.Read() ? new CaptureState(reader.GetInt64(0), reader.GetString(1), reader.GetInt64(2) != 0) : null;
        }
    }

    /// <summary>
    /// Stores one collection in one transaction: its events (their sequence numbers filled in), the connections still
    /// tracked that changed (null: none), the counters counted (null: unchanged) and the capture state; then trims the sandbox's oldest events.
    /// </summary>
    public void Commit(string sandboxId, IReadOnlyList<NetworkEvent> events, LiveChanges? live,
        IReadOnlyDictionary<string, (long Packets, long Bytes)>? counters, CaptureState capture)
    {
        lock (_gate)
        {
            using var transaction = _connection.BeginTransaction();
            foreach (var observed in events)
            {
                using var insert = Command("INSERT INTO network_events (sandbox_id, observed_at_ms, record) VALUES ($s, $t, '') RETURNING sequence",
                    ("$s", sandboxId), ("$t", observed.ObservedAtMs));
                observed.Sequence = (long)insert.ExecuteScalar()!;
                using var update = Command("UPDATE network_events SET record = $r WHERE sequence = $q", ("$r", Serialize(observed)), ("$q", observed.Sequence));
                update.ExecuteNonQuery();
            }

            if (live is not null)
            {
                foreach (var connection in live.Removals)
                {
                    Run("DELETE FROM network_live WHERE sandbox_id = $s AND connection_id = $c", ("$s", sandboxId), ("$c", connection));
                }

                foreach (var (connection, latest) in live.Upserts)
                {
                    Run("INSERT INTO network_live (sandbox_id, connection_id, record) VALUES ($s, $c, $r) ON CONFLICT(sandbox_id, connection_id) DO UPDATE SET record = $r",
                        ("$s", sandboxId), ("$c", connection), ("$r", Serialize(latest)));
                }
            }

            if (counters is not null)
            {
                Run("DELETE FROM network_counters WHERE sandbox_id = $s", ("$s", sandboxId));
                foreach (var (rule, (packets, bytes)) in counters)
                {
                    Run("INSERT INTO network_counters (sandbox_id, rule, packets, bytes) VALUES ($s, $r, $p, $b)", ("$s", sandboxId), ("$r", rule), ("$p", packets), ("$b", bytes));
                }
            }

            Run("INSERT INTO network_capture (sandbox_id, last_observed_at_ms, capture_session, failing) VALUES ($s, $t, $c, $f) " +
                "ON CONFLICT(sandbox_id) DO UPDATE SET last_observed_at_ms = $t, capture_session = $c, failing = $f",
                ("$s", sandboxId), ("$t", capture.LastObservedAtMs), ("$c", capture.CaptureSession), ("$f", capture.Failing ? 1 : 0));
            if (events.Count > 0)
            {
                using var trim = Command("DELETE FROM network_events WHERE sandbox_id = $s AND sequence <= (SELECT sequence FROM network_events WHERE sandbox_id = $s ORDER BY sequence DESC LIMIT 1 OFFSET $max)",
                    ("$s", sandboxId), ("$max", MaxEventsPerSandbox));
                var dropped = trim.ExecuteNonQuery();
                if (dropped > 0)
                {
                    // One more goes to make room for the gap that says how many went: a loss is never silent.
                    dropped += RunCount("DELETE FROM network_events WHERE sequence = (SELECT MIN(sequence) FROM network_events WHERE sandbox_id = $s)", ("$s", sandboxId));
                    var last = events[^1];
                    var gap = new NetworkEvent
                    {
                        Namespace = last.Namespace, SandboxId = sandboxId, ExecutorId = last.ExecutorId, AllocationId = last.AllocationId, CaptureSession = last.CaptureSession,
                        ObservedAtMs = last.ObservedAtMs, EventKind = NetworkEventKinds.Gap, ConnectionId = $"gap@{last.ObservedAtMs}", Detail = "events_dropped",
                        ObservedConnections = dropped, ObservationSource = NetworkObservationSources.Collector,
                    };
                    using var insert = Command("INSERT INTO network_events (sandbox_id, observed_at_ms, record) VALUES ($s, $t, '') RETURNING sequence", ("$s", sandboxId), ("$t", gap.ObservedAtMs));
                    gap.Sequence = (long)insert.ExecuteScalar()!;
                    Run("UPDATE network_events SET record = $r WHERE sequence = $q", ("$r", Serialize(gap)), ("$q", gap.Sequence));
                }
            }

            transaction.Commit();
        }
    }

    /// <summary>Up to <paramref name="count"/> events after <paramref name="afterSequence"/> observed in [from, to], in order.</summary>
    public List<NetworkEvent> Events(string sandboxId, long fromMs, long toMs, long afterSequence, int count)
    {
        lock (_gate)
        {
            using var command = Command(
                "SELECT record FROM network_events WHERE sandbox_id = $s AND sequence > $after AND observed_at_ms >= $from AND observed_at_ms <= $to ORDER BY sequence LIMIT $n",
                ("$s", sandboxId), ("$after", afterSequence), ("$from", fromMs), ("$to", toMs), ("$n", count));
            return Read(command);
        }
    }

    /// <summary>The connection events (conntrack) observed in [from, to], in order.</summary>
    public List<NetworkEvent> ConnectionEvents(string sandboxId, long fromMs, long toMs)
    {
        lock (_gate)
        {
            using var command = Command(
                "SELECT record FROM network_events WHERE sandbox_id = $s AND observed_at_ms >= $from AND observed_at_ms <= $to ORDER BY sequence",
                ("$s", sandboxId), ("$from", fromMs), ("$to", toMs));
            return [.. Read(command).Where(e => e.ObservationSource == NetworkObservationSources.Conntrack)];
        }
    }

    /// <summary>Drops events older than the retention, and the collector state of sandboxes with nothing left to track.</summary>
    public void Prune(long nowMs, IReadOnlySet<string> liveSandboxes)
    {
        lock (_gate)
        {
            Run("DELETE FROM network_events WHERE observed_at_ms < $cutoff", ("$cutoff", nowMs - (long)Retention.TotalMilliseconds));
            foreach (var table in new[] { "network_live", "network_counters" })
            {
                using var command = Command($"SELECT DISTINCT sandbox_id FROM {table}");
                var stale = new List<string>();
                using (var reader = command.ExecuteReader())
                {
                    while (reader.Read())
                    {
                        if (!liveSandboxes.Contains(reader.GetString(0)))
                        {
                            stale.Add(reader.GetString(0));
                        }
                    }
                }

                foreach (var id in stale)
                {
                    Run($"DELETE FROM {table} WHERE sandbox_id = $s", ("$s", id));
                }
            }
        }
    }

    private static string Serialize(NetworkEvent observed) => JsonSerializer.Serialize(observed, SandboxesJsonContext.Default.NetworkEvent);

    private static NetworkEvent Deserialize(string json) => JsonSerializer.Deserialize(json, SandboxesJsonContext.Default.NetworkEvent)!;

    private static List<NetworkEvent> Read(SqliteCommand command)
    {
        using var reader = command.ExecuteReader();
        var list = new List<NetworkEvent>();
        while (reader.Read())
        {
            list.Add(Deserialize(reader.GetString(0)));
        }

        return list;
    }

    private SqliteCommand Command(string sql, params (string Name, object Value)[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }

        return command;
    }

    private void Run(string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(sql, parameters);
        command.ExecuteNonQuery();
    }

    private int RunCount(string sql, params (string Name, object Value)[] parameters)
    {
        using var command = Command(sql, parameters);
        return command.ExecuteNonQuery();
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();
}
