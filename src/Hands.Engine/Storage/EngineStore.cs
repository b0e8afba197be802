using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.Data.Sqlite;

namespace Hands.Engine.Storage;

/// <summary>
/// The engine's durable state in SQLite (<c>engine.db</c> under the data directory): one row per sandbox, snapshot,
/// image and pool, the record as JSON beside the columns that are looked up. Every write commits before the API answers.
/// </summary>
internal sealed class EngineStore : IDisposable
{
    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();

    public EngineStore(string path)
    {
        _connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        _connection.Open();
        Execute("""
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = FULL;
            CREATE TABLE IF NOT EXISTS sandboxes (id TEXT PRIMARY KEY, name TEXT, status TEXT NOT NULL, created_at INTEGER NOT NULL, record TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS snapshots (id TEXT PRIMARY KEY, sandbox_id TEXT NOT NULL, created_at INTEGER NOT NULL, record TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS images (name TEXT PRIMARY KEY, record TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS pools (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, record TEXT NOT NULL);
            """);
    }

    public void Save(SandboxRecord record) =>
        Upsert("INSERT INTO sandboxes (id, name, status, created_at, record) VALUES ($k, $name, $status, $created, $json) ON CONFLICT(id) DO UPDATE SET name = $name, status = $status, record = $json",
            record.Id, record, EngineJsonContext.Default.SandboxRecord, ("$name", record.Name), ("$status", record.Status), ("$created", record.CreatedAt));

    public void Save(SnapshotRecord record) =>
        Upsert("INSERT INTO snapshots (id, sandbox_id, created_at, record) VALUES ($k, $sandbox, $created, $json) ON CONFLICT(id) DO UPDATE SET record = $json",
            record.Id, record, EngineJsonContext.Default.SnapshotRecord, ("$sandbox", record.SandboxId), ("$created", record.CreatedAt));

    public void Save(ImageRecord record) =>
        Upsert("INSERT INTO images (name, record) VALUES ($k, $json) ON CONFLICT(name) DO UPDATE SET record = $json",
            record.Name, record, EngineJsonContext.Default.ImageRecord);

    public void Save(PoolRecord record) =>
        Upsert("INSERT INTO pools (id, created_at, record) VALUES ($k, $created, $json) ON CONFLICT(id) DO UPDATE SET record = $json",
            record.Id, record, EngineJsonContext.Default.PoolRecord, ("$created", record.CreatedAt));

    public IReadOnlyList<PoolRecord> Pools() => Query("SELECT record FROM pools ORDER BY created_at, id", EngineJsonContext.Default.PoolRecord);

    /// <summary>One pool by id, or null.</summary>
    public PoolRecord? Pool(string id) => Query("SELECT record FROM pools WHERE id = $k", EngineJsonContext.Default.PoolRecord, id).FirstOrDefault();

    public void DeletePool(string id) => Delete("DELETE FROM pools WHERE id = $k", id);

    public IReadOnlyList<SandboxRecord> Sandboxes() => Query("SELECT record FROM sandboxes ORDER BY created_at, id", EngineJsonContext.Default.SandboxRecord);

    /// <summary>Sandboxes not terminated: the ingress and the idle clock read these often, so history stays out of it.</summary>
    public IReadOnlyList<SandboxRecord> LiveSandboxes() =>
        Query("SELECT record FROM sandboxes WHERE status <> 'terminated' ORDER BY created_at, id", EngineJsonContext.Default.SandboxRecord);

    /// <summary>One sandbox by id, or null.</summary>
    public SandboxRecord? Sandbox(string id) =>
        Query("SELECT record FROM sandboxes WHERE id = $k", EngineJsonContext.Default.SandboxRecord, id).FirstOrDefault();

    /// <summary>Sandboxes that have (or had) <paramref name="name"/>, oldest first.</summary>
    public IReadOnlyList<SandboxRecord> SandboxesNamed(string name) =>
        Query("SELECT record FROM sandboxes WHERE name = $k ORDER BY created_at, id", EngineJsonContext.Default.SandboxRecord, name);

    public IReadOnlyList<SnapshotRecord> Snapshots() => Query("SELECT record FROM snapshots ORDER BY created_at, id", EngineJsonContext.Default.SnapshotRecord);

    public IReadOnlyList<ImageRecord> Images() => Query("SELECT record FROM images ORDER BY name", EngineJsonContext.Default.ImageRecord);

    public void DeleteSnapshot(string id) => Delete("DELETE FROM snapshots WHERE id = $k", id);

    public void DeleteImage(string name) => Delete("DELETE FROM images WHERE name = $k", name);

    private void Upsert<T>(string sql, string key, T record, JsonTypeInfo<T> type, params (string Name, object? Value)[] columns)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$k", key);
            command.Parameters.AddWithValue("$json", JsonSerializer.Serialize(record, type));
            foreach (var (name, value) in columns)
            {
                command.Parameters.AddWithValue(name, value ?? DBNull.Value);
            }

            command.ExecuteNonQuery();
        }
    }

    private void Delete(string sql, string key)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            command.Parameters.AddWithValue("$k", key);
            command.ExecuteNonQuery();
        }
    }

    private List<T> Query<T>(string sql, JsonTypeInfo<T> type, string? key = null)
    {
        lock (_gate)
        {
            using var command = _connection.CreateCommand();
            command.CommandText = sql;
            if (key is not null)
            {
                command.Parameters.AddWithValue("$k", key);
            }

            using var reader = command.ExecuteReader();
            var list = new List<T>();
            while (reader.Read())
            {
                list.Add(JsonSerializer.Deserialize(reader.GetString(0), type)!);
            }

            return list;
        }
    }

    private void Execute(string sql)
    {
        using var command = _connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    public void Dispose() => _connection.Dispose();
}
