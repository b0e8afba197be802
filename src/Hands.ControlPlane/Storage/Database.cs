using Microsoft.Data.Sqlite;

namespace Hands.ControlPlane.Storage;

/// <summary>
/// The control plane's SQLite file. WAL journal: every acknowledged write is committed before the HTTP answer, so a
/// <c>kill -9</c> loses nothing that was answered (synchronous=FULL also survives power loss). Writes are serialized
/// on one connection; reads use pooled connections and never block on writes.
/// </summary>
public sealed class Database : IDisposable
{
    private readonly string _connectionString;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly SqliteConnection _writer;

    public Database(string path)
    {
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
        _writer = new SqliteConnection(_connectionString);
        _writer.Open();
        using (var pragma = _writer.CreateCommand())
        {
            pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=30000;";
            pragma.ExecuteNonQuery();
        }

        Schema.Apply(new Sql(_writer, null));
    }

    /// <summary>Runs <paramref name="work"/> in one immediate transaction; all of it commits or none does.</summary>
    public async Task<T> WriteAsync<T>(Func<Sql, T> work, CancellationToken cancellationToken = default)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return WriteLocked(work);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Synchronous twin of <see cref="WriteAsync{T}"/> for background sweeps.</summary>
    public T Write<T>(Func<Sql, T> work)
    {
        _writeLock.Wait();
        try
        {
            return WriteLocked(work);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private T WriteLocked<T>(Func<Sql, T> work)
    {
        using var tx = _writer.BeginTransaction(deferred: false);
        var result = work(new Sql(_writer, tx));
        tx.Commit();
        return result;
    }

    /// <summary>Runs a read on a pooled connection (a consistent snapshot for its duration).</summary>
    public T Read<T>(Func<Sql, T> work)
    {
        using var connection = new SqliteConnection(_connectionString);
        connection.Open();
        using var tx = connection.BeginTransaction(deferred: true);
        return work(new Sql(connection, tx));
    }

    public void Dispose()
    {
        _writer.Dispose();
        _writeLock.Dispose();
        SqliteConnection.ClearAllPools();
    }
}

/// <summary>A connection (and its transaction, if any) with small helpers for parameterised SQL.</summary>
public sealed class Sql(SqliteConnection connection, SqliteTransaction? transaction)
{
    private SqliteCommand Command(string text, (string Name, object? Value)[] args)
    {
        var command = connection.CreateCommand();
        command.CommandText = text;
        command.Transaction = transaction;
        foreach (var (name, value) in args)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }

        return command;
    }

    public int Exec(string text, params (string Name, object? Value)[] args)
    {
        using var command = Command(text, args);
        return command.ExecuteNonQuery();
    }

    public T? Scalar<T>(string text, params (string Name, object? Value)[] args)
    {
        using var command = Command(text, args);
        var value = command.ExecuteScalar();
        if (value is null or DBNull)
        {
            return default;
        }

        var target = Nullable.GetUnderlyingType(typeof(T)) ?? typeof(T);
        return (T)Convert.ChangeType(value, target, System.Globalization.CultureInfo.InvariantCulture);
    }

    public List<T> Query<T>(string text, Func<SqliteDataReader, T> map, params (string Name, object? Value)[] args)
    {
        using var command = Command(text, args);
        using var reader = command.ExecuteReader();
        var list = new List<T>();
        while (reader.Read())
        {
            list.Add(map(reader));
        }

        return list;
    }

    public T? One<T>(string text, Func<SqliteDataReader, T> map, params (string Name, object? Value)[] args) where T : class =>
        Query(text, map, args).FirstOrDefault();
}
