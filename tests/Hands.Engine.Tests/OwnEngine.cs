using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>
/// A second engine a test starts for itself (its own data directory, options the shared one must not have). Disposing
/// terminates its live sandboxes, stops it, checks nothing is left on the host, and deletes the data directory.
/// </summary>
internal sealed class OwnEngine : IAsyncDisposable
{
    private bool _stopped;

    private OwnEngine(string dataDirectory, EngineServer server)
    {
        DataDirectory = dataDirectory;
        Server = server;
        Client = EngineFixture.NewClient(server);
    }

    public string DataDirectory { get; }

    public EngineServer Server { get; }

    public TensorlakeClient Client { get; }

    public static async Task<OwnEngine> StartAsync(string prefix, Action<EngineOptions> configure)
    {
        var data = Path.Combine(Path.GetTempPath(), prefix + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(data);
        try
        {
            return new OwnEngine(data, await EngineFixture.StartEngineAsync(data, configure));
        }
        catch
        {
            Directory.Delete(data, recursive: true);
            throw;
        }
    }

    /// <summary>Terminates its live sandboxes, deletes its pools and stops it (the data directory stays, for a test that restarts it).</summary>
    public async Task StopAsync()
    {
        if (_stopped)
        {
            return;
        }

        _stopped = true;
        try
        {
            await foreach (var sandbox in Client.ListAllAsync())
            {
                if (sandbox.Status != SandboxStatus.Terminated)
                {
                    await Client.DeleteAsync(sandbox.CanonicalId);
                }
            }

            // Deleting a pool removes its warm sandboxes, which no sandbox list shows.
            foreach (var pool in await Client.ListPoolsAsync())
            {
                await Client.DeletePoolAsync(pool.CanonicalId);
            }
        }
        finally
        {
            Client.Dispose();
            await Server.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
            Leftovers.AssertNone(DataDirectory);
        }
        finally
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
    }
}
