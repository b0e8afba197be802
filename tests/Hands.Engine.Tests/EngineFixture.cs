using System.Runtime.Versioning;
using Hands.Engine;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

[assembly: SupportedOSPlatform("linux")]

namespace Hands.Engine.Tests;

/// <summary>
/// One real engine (runc, overlayfs, network namespaces, CRIU) for the engine tests, on loopback ports and a temporary
/// data directory. Disposing deletes every sandbox, pool and snapshot it made and checks that no mount, namespace or
/// container is left behind.
/// </summary>
public sealed class EngineFixture : IAsyncLifetime
{
    public const string ApiKey = "tl_apiKey_engine-tests";

    public string DataDirectory { get; } = Path.Combine(Path.GetTempPath(), "hands-engine-tests-" + Guid.NewGuid().ToString("N")[..8]);

    public EngineServer Engine { get; private set; } = null!;

    /// <summary>The running engine's options; a test may lower <see cref="EngineOptions.MaxSandboxes"/> and must restore it.</summary>
    public EngineOptions RunningOptions { get; private set; } = null!;

    public TensorlakeClient Client { get; private set; } = null!;

    /// <summary>A loopback port reserved for the orchestration tests' control plane; sandboxes reach it as host.hands.internal.</summary>
    public int ControlPlanePort { get; } = FreePort();

    /// <summary>A loopback port reserved for the tracing tests' OTLP receiver; workers in sandboxes reach it as host.hands.internal.</summary>
    public int OtlpPort { get; } = FreePort();

    public async Task InitializeAsync()
    {
        var (api, ingress) = (FreePort(), FreePort());
        Engine = await StartEngineAsync(DataDirectory, o =>
        {
            o.ApiUrl = new Uri($"http://127.0.0.1:{api}");
            o.IngressUrl = new Uri($"http://127.0.0.1:{ingress}");
            o.HostPorts = [ControlPlanePort, OtlpPort, api, ingress];
            RunningOptions = o;
        });
        Client = NewClient(Engine);
    }

    /// <summary>A free loopback port (for servers that must know their port before they start).</summary>
    internal static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public static EngineOptions Options(string dataDirectory) => new()
    {
        DataDirectory = dataDirectory,
        ApiUrl = new Uri("http://127.0.0.1:0"),
        IngressUrl = new Uri("http://127.0.0.1:0"),
        ApiKey = ApiKey,
        SandboxDaemonBinary = Artifact("HANDS_SANDBOXD_BINARY", "hands-sandboxd"),
        WorkerBinary = Artifact("HANDS_WORKER_BINARY", "hands-worker"),
        IdleCheckInterval = TimeSpan.FromMilliseconds(200),
        // Allocated in full: small, so that several test engines fit on a build machine's disk at once.
        VolumeMb = 2048,
    };

    public static Task<EngineServer> StartEngineAsync(string dataDirectory, Action<EngineOptions>? configure = null)
    {
        var options = Options(dataDirectory);
        configure?.Invoke(options);
        return EngineServer.StartAsync(options, logging => logging.SetMinimumLevelWarning());
    }

    public static TensorlakeClient NewClient(EngineServer engine) => new(new TensorlakeClientOptions
    {
        ApiUrl = engine.ApiAddress,
        ApiKey = ApiKey,
        MaxRetries = 0,
    });

    /// <summary>scripts/test.sh publishes the NativeAOT binaries to artifacts/ and exports their paths.</summary>
    internal static string? Artifact(string variable, string name)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } path)
        {
            return path;
        }

        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hands.slnx")))
        {
            dir = dir.Parent;
        }

        var candidate = dir is null ? null : Path.Combine(dir.FullName, "artifacts", name, name);
        return candidate is not null && File.Exists(candidate) ? candidate : null;
    }

    /// <summary>Creates a sandbox on the host base and deletes it when the test ends, pass or fail.</summary>
    public async Task<TestSandbox> CreateAsync(CreateSandboxRequest? request = null)
    {
        request ??= new CreateSandboxRequest();
        request.Image ??= "host";
        var created = await Client.CreateAsync(request);
        return new TestSandbox(Client, created.CanonicalId, Client.Proxy(created));
    }

    /// <summary>Deletes a sandbox by id or name; one already gone is fine (test clean-up, pass or fail).</summary>
    public async Task DeleteQuietlyAsync(string idOrName)
    {
        try
        {
            await Client.DeleteAsync(idOrName);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            // Already gone.
        }
    }

    public async Task DisposeAsync()
    {
        try
        {
            await foreach (var sandbox in Client.ListAllAsync())
            {
                if (sandbox.Status != SandboxStatus.Terminated)
                {
                    await Client.DeleteAsync(sandbox.CanonicalId);
                }
            }

            // After the sandboxes (a pool is in use while one claimed from it lives); deleting a pool removes its warm ones.
            foreach (var pool in await Client.ListPoolsAsync())
            {
                await Client.DeletePoolAsync(pool.CanonicalId);
            }

            foreach (var snapshot in await Client.ListSnapshotsAsync())
            {
                await Client.DeleteSnapshotAsync(snapshot.CanonicalId);
            }
        }
        finally
        {
            Client.Dispose();
            await Engine.DisposeAsync();
            Leftovers.AssertNone(DataDirectory);
            Directory.Delete(DataDirectory, recursive: true);
        }
    }
}

/// <summary>A sandbox a test made; disposing terminates it.</summary>
public sealed class TestSandbox(TensorlakeClient client, string id, SandboxProxyClient proxy) : IAsyncDisposable
{
    public string Id { get; } = id;

    public SandboxProxyClient Proxy { get; } = proxy;

    public Task<CommandResult> RunAsync(string script, Dictionary<string, string>? env = null) =>
        Proxy.RunAsync(new RunProcessRequest { Command = "bash", Args = ["-c", script], Env = env });

    public async ValueTask DisposeAsync()
    {
        try
        {
            await client.DeleteAsync(Id);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            // Already gone.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class EngineCollection : ICollectionFixture<EngineFixture>
{
    /// <summary>All engine tests share one engine and run one after another: sandboxes share 10.200.0.0/16.</summary>
    public const string Name = "engine";
}

internal static class LoggingExtensions
{
    public static void SetMinimumLevelWarning(this ILoggingBuilder builder) =>
        builder.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
}
