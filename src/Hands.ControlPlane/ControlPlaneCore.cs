using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Scripted;
using Hands.ControlPlane.Sessions;
using Hands.ControlPlane.Storage;
using Hands.ControlPlane.Webhooks;

namespace Hands.ControlPlane;

/// <summary>The shared state of one control plane: database, clock, wake-up hubs, scenarios, webhook dispatcher.</summary>
public sealed class ControlPlaneCore : IDisposable
{
    public ControlPlaneCore(ControlPlaneOptions options)
    {
        Options = options;
        SessionSignals = new SignalHub(options.Time);
        EnvironmentSignals = new SignalHub(options.Time);
        // Secrets live here (webhook signing keys, session events); key and token hashes too: the owner alone reads it.
        var file = Path.Combine(options.DataDirectory, "control-plane.db");
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(options.DataDirectory);
        }
        else
        {
            // Owner-only before the first byte is written: SQLite then gives its -wal and -shm files the same mode.
            Directory.CreateDirectory(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            File.SetUnixFileMode(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using (new FileStream(file, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            {
            }

            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        Database = new Database(file);
        Scenarios = new ScenarioLibrary(options.ScenariosDirectory);
    }

    public ControlPlaneOptions Options { get; }
    public Database Database { get; }
    public ScenarioLibrary Scenarios { get; }
    public SignalHub SessionSignals { get; }
    public SignalHub EnvironmentSignals { get; }
    public WebhookDispatcher? Webhooks { get; set; }
    public DateTimeOffset Now => Options.Time.GetUtcNow();

    /// <summary>Runs <paramref name="work"/> in one transaction, then wakes the streams, polls and webhooks it touched.</summary>
    public async Task<T> WriteAsync<T>(Func<WriteScope, T> work, CancellationToken cancellationToken = default)
    {
        WriteScope? scope = null;
        var result = await Database.WriteAsync(sql =>
        {
            scope = new WriteScope(sql, Now);
            return work(scope);
        }, cancellationToken).ConfigureAwait(false);
        scope!.Publish(SessionSignals, EnvironmentSignals, Webhooks);
        return result;
    }

    /// <summary>Synchronous twin of <see cref="WriteAsync{T}"/> for background sweeps.</summary>
    public T Write<T>(Func<WriteScope, T> work)
    {
        WriteScope? scope = null;
        var result = Database.Write(sql =>
        {
            scope = new WriteScope(sql, Now);
            return work(scope);
        });
        scope!.Publish(SessionSignals, EnvironmentSignals, Webhooks);
        return result;
    }

    public T Read<T>(Func<Sql, T> work) => Database.Read(work);

    public void Dispose() => Database.Dispose();
}
