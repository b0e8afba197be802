using Hands.Engine.Api;
using Hands.Engine.Hosting;
using Hands.Engine.Ingress;
using Hands.Engine.Network;
using Hands.Engine.Runtime;
using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Hands.Engine.Telemetry;
using Hands.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Hands.Engine;

/// <summary>
/// <c>hands engine</c>: the lifecycle API on <see cref="EngineOptions.ApiUrl"/> and the ingress on
/// <see cref="EngineOptions.IngressUrl"/>, two Kestrel servers over one <see cref="SandboxManager"/>. Starting recovers
/// what a previous run left (re-attach, keep suspended sandboxes and snapshots, remove orphans) and resumes refilling
/// warm pools.
/// </summary>
public sealed class EngineServer : IAsyncDisposable
{
    private readonly WebApplication _api;
    private readonly WebApplication _ingress;
    private readonly EngineStore _store;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _idleLoop;
    private readonly Task _networkLoop;
    private readonly Task _poolLoop;
    private readonly Task _blankDiskLoop;
    private readonly Task _spareNetworkLoop;
    private readonly TcpRelays _relays;
    private readonly EngineOptions _options;
    private readonly DataDirectoryLock _lock;
    private readonly EngineMetrics _metrics;
    private int _disposed;

    private EngineServer(WebApplication api, WebApplication ingress, EngineStore store, SandboxManager sandboxes, TcpRelays relays, Uri apiAddress, Uri ingressAddress, EngineOptions options, DataDirectoryLock dataLock,
        EngineMetrics metrics)
    {
        _metrics = metrics;
        _lock = dataLock;
        _relays = relays;
        _options = options;
        _api = api;
        _ingress = ingress;
        _store = store;
        Sandboxes = sandboxes;
        ApiAddress = apiAddress;
        IngressAddress = ingressAddress;
        _idleLoop = IdleLoopAsync(options.IdleCheckInterval, api.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Hands.Engine.Idle"));
        _networkLoop = NetworkTelemetryLoopAsync(options.NetworkTelemetryInterval, api.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Hands.Engine.Network"));
        // Its first pass resumes what a restart interrupted: pools refill to their warm targets.
        _poolLoop = Task.Run(() => sandboxes.RunPoolsAsync(_stopping.Token));
        _blankDiskLoop = Task.Run(() => sandboxes.BlankDisks.RunAsync(_stopping.Token));
        _spareNetworkLoop = Task.Run(() => sandboxes.RunSpareNetworksAsync(_stopping.Token));
    }

    /// <summary>Where the lifecycle API is served; the Tensorlake client's API URL (local mode).</summary>
    public Uri ApiAddress { get; }

    /// <summary>Where the ingress is served; every sandbox's <c>sandbox_url</c>.</summary>
    public Uri IngressAddress { get; }

    /// <summary>Whether memory snapshots and hibernation are available (CRIU passed <c>criu check</c>).</summary>
    public bool CriuAvailable => Sandboxes.CriuAvailable;

    /// <summary>The data volume's image file (every sandbox disk, snapshot and checkpoint lives in it).</summary>
    public string VolumeImage => Sandboxes.Volume.ImageFile;

    /// <summary>The data volume's size in bytes.</summary>
    public long VolumeSizeBytes => Sandboxes.Volume.SizeBytes;

    /// <summary>What the data volume can still take, in bytes.</summary>
    public long VolumeFreeBytes => Sandboxes.Volume.FreeBytes;

    /// <summary>A sandbox's disk when its create names no <c>disk_mb</c> (Tensorlake's 10 GiB).</summary>
    public const int DefaultDiskMb = Storage.SandboxDisk.DefaultMb;

    /// <summary>What all warm pool sandboxes together may hold in <c>memory_mb</c> limits (<see cref="EngineOptions.PoolMemoryMb"/>).</summary>
    public int PoolMemoryBudgetMb => Sandboxes.PoolMemoryBudgetMb;

    /// <summary>Why CRIU is unavailable, with the fix; null when it works.</summary>
    public string? CriuProblem => Sandboxes.CriuProblem;

    internal SandboxManager Sandboxes { get; }

    /// <summary>Builds the <c>debian</c> base image (debootstrap minbase) if it is not built yet.</summary>
    public Task PrepareDebianAsync(CancellationToken cancellationToken = default) => Sandboxes.Images.EnsureDebianAsync(cancellationToken);

    public static async Task<EngineServer> StartAsync(EngineOptions options, Action<ILoggingBuilder>? logging = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        // Its forwarder and sandboxes outlive it: none may hold a lock or socket this process was started with.
        InheritedDescriptors.KeepFromChildren();
        var binaries = await EngineBinaries.ProbeAsync(options, cancellationToken).ConfigureAwait(false);
        options.DataDirectory = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(options.DataDirectory);
        // Before anything in the directory is touched: a second engine would take the first one's sandboxes for orphans.
        var dataLock = DataDirectoryLock.Acquire(options.DataDirectory);
        try
        {
            return await StartLockedAsync(options, binaries, dataLock, logging, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            dataLock.Dispose();
            throw;
        }
    }

    private static async Task<EngineServer> StartLockedAsync(EngineOptions options, EngineBinaries binaries, DataDirectoryLock dataLock, Action<ILoggingBuilder>? logging, CancellationToken cancellationToken)
    {
        foreach (var dir in new[] { "runc", "netns", "images" })
        {
            OwnerOnlyDirectory.Ensure(Path.Combine(options.DataDirectory, dir));
        }

        // Sandbox roots, layers and CRIU images hold other tenants' files: root only (sandbox root may pass with --userns).
        var identity = new SandboxIdentity(options.UserNamespace);
        identity.EnsureRangeIsFree();
        identity.CloseDirectory(options.DataDirectory);
        using var loggerFactory = LoggerFactory.Create(b => (logging ?? DefaultLogging)(b));
        var logger = loggerFactory.CreateLogger("Hands.Engine");
        // Daemon tokens and fork keys are in it. Made 0600 before SQLite opens it, which gives its -wal and -shm the same mode.
        var database = Path.Combine(options.DataDirectory, "engine.db");
        foreach (var file in new[] { database, database + "-wal", database + "-shm" }.Where(File.Exists))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        using (new FileStream(database, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
        {
        }

        var store = new EngineStore(database);
        var volume = new DataVolume(options.DataDirectory, options.VolumeMb, logger);
        var mountedNow = false;
        try
        {
            mountedNow = await volume.EnsureMountedAsync(cancellationToken).ConfigureAwait(false);
            identity.EnsureVolumeMatches(volume.MountPoint);
            identity.CloseDirectory(volume.MountPoint);

            var images = new ImageStore(options, store, identity, logger);
            images.PrepareHostBase();
            var runtime = new RuncRuntime(options.RuntimeBinary, Path.Combine(options.DataDirectory, "runc"), binaries.Criu);
            if (binaries.Criu is { } criu)
            {
                await CriuKernelDataCache.EnsureAsync(criu, Path.Combine(options.DataDirectory, "runc"), logger, cancellationToken).ConfigureAwait(false);
            }

            var activity = new SandboxActivity(options.TimeProvider);
            var sandboxes = new SandboxManager(options, store, images, volume, identity, runtime, binaries, activity, logger);
            await sandboxes.RecoverAsync(cancellationToken).ConfigureAwait(false);
            await HostFirewall.ApplyAsync(NetworkSlot.PrefixFor(options.DataDirectory), options.HostPorts, cancellationToken).ConfigureAwait(false);
            if (binaries.CriuProblem is { } problem)
            {
                logger.LogWarning("CRIU unavailable, memory snapshots and hibernation are off: {Problem}", problem);
            }

            if (options.ApiKey is null && !options.AllowAnonymous)
            {
                options.ApiKey = EngineApiKeyFile.LoadOrCreate(options.DataDirectory);
            }

            var auth = new ApiKeyCheck(options.ApiKey, new ForkKeys(options.DataDirectory));
            var hosts = new HostHeaderFilter(options.ApiUrl, options.IngressUrl);
            var ingress = BuildApp(options.IngressUrl, logging, services =>
            {
                services.AddHttpForwarder();
            });
            var proxy = new IngressProxy(sandboxes, activity, auth, ingress.Services.GetRequiredService<IHttpForwarder>(), logger);
            ingress.Use(hosts.CheckAsync);
            ingress.Run(proxy.HandleAsync);
            await ingress.StartAsync(cancellationToken).ConfigureAwait(false);
            var ingressAddress = ingress.BoundAddress();
            var ingressEndpoint = new UriBuilder(ingressAddress) { Host = ingressAddress.IsLoopback ? "localhost" : ingressAddress.Host }.Uri.ToString().TrimEnd('/');

            var api = BuildApp(options.ApiUrl, logging, _ => { });
            var relays = new TcpRelays(sandboxes, activity, logger);
            api.UseServerSpans();
            api.Use(EngineMetrics.CountErrorsAsync);
            api.Use(hosts.CheckAsync);
            LifecycleEndpoints.Map(api, sandboxes, new WireMapper(ingressAddress, ingressEndpoint, identity.RuntimeName), auth, relays);
            HealthEndpoints.Map(api, sandboxes);
            api.MapPrometheusMetrics(); // behind the engine's key, like every other route but the health probes
            var metrics = new EngineMetrics(sandboxes);
            await api.StartAsync(cancellationToken).ConfigureAwait(false);
            var apiAddress = api.BoundAddress();
            logger.LogInformation("engine API on {Api}, ingress on {Ingress}, data in {Data}", apiAddress, ingressAddress, options.DataDirectory);
            return new EngineServer(api, ingress, store, sandboxes, relays, apiAddress, ingressAddress, options, dataLock, metrics);
        }
        catch
        {
            // A start that fails leaves the volume as it found it: nothing can be running from one it mounted itself.
            if (mountedNow)
            {
                volume.Unmount();
            }

            store.Dispose();
            throw;
        }
    }

    private static void DefaultLogging(ILoggingBuilder builder) =>
        builder.AddHandsConsole().SetMinimumLevel(LogLevel.Information)
            .AddFilter("Microsoft", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning);

    private static WebApplication BuildApp(Uri url, Action<ILoggingBuilder>? logging, Action<IServiceCollection> services)
    {
        var builder = SlimWebHost.CreateBuilder(new WebHostSettings(url.ToString(), null) { Logging = logging ?? DefaultLogging });
        services(builder.Services);
        return builder.Build();
    }

    private async Task IdleLoopAsync(TimeSpan interval, ILogger logger)
    {
        using var timer = new PeriodicTimer(interval, Sandboxes.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await Sandboxes.IdleTickAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogError(ex, "idle pass failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Every interval, the network telemetry of every live sandbox (see <see cref="Network.Telemetry.NetworkTelemetry"/>).</summary>
    private async Task NetworkTelemetryLoopAsync(TimeSpan interval, ILogger logger)
    {
        using var timer = new PeriodicTimer(interval, Sandboxes.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token).ConfigureAwait(false))
            {
                try
                {
                    await Sandboxes.CollectAllNetworkAsync(_stopping.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogError(ex, "network telemetry pass failed");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Stops serving. Sandboxes keep running; the next start re-attaches to them.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        _metrics.Dispose();
        await _idleLoop.ConfigureAwait(false);
        await _networkLoop.ConfigureAwait(false);
        // A warm boot under way finishes first (a boot is never cut); then the refill stops.
        await _poolLoop.ConfigureAwait(false);
        await _blankDiskLoop.ConfigureAwait(false);
        // Spares are nobody's: none is left behind a stop (a restart's recovery would remove them anyway).
        await _spareNetworkLoop.ConfigureAwait(false);
        await Sandboxes.SpareNetworks.DestroyAllAsync().ConfigureAwait(false);
        await _relays.DisposeAsync().ConfigureAwait(false);
        await Sandboxes.StopHostPortsAsync().ConfigureAwait(false);
        await _ingress.StopAsync().ConfigureAwait(false);
        await _api.StopAsync().ConfigureAwait(false);
        await _ingress.DisposeAsync().ConfigureAwait(false);
        await _api.DisposeAsync().ConfigureAwait(false);
        // The host's rules outlive the engine while its sandboxes do: they keep running across a restart.
        if (Sandboxes.AllAlive().Count == 0)
        {
            await HostFirewall.RemoveAsync(NetworkSlot.PrefixFor(_options.DataDirectory), CancellationToken.None).ConfigureAwait(false);
            Sandboxes.Volume.Unmount();
        }

        Sandboxes.NetworkTelemetry.Dispose();
        _store.Dispose();
        _stopping.Dispose();
        // Last: until here this engine still owns the directory's volume and database.
        _lock.Dispose();
    }
}
