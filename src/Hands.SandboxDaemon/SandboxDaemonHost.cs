using System.Net;
using Hands.Common;
using Hands.Hosting;
using Hands.SandboxDaemon.Endpoints;
using Hands.SandboxDaemon.Processes;

namespace Hands.SandboxDaemon;

/// <summary>
/// Hosts the sandbox API on <c>--listen ADDRESS:PORT</c> (default <c>0.0.0.0:9501</c>, inside the sandbox's own network
/// namespace), for the holder of the token in <c>--token-file</c> only (<see cref="DaemonAccess"/>). The engine's
/// ingress is the only thing that can reach it from outside the sandbox.
/// </summary>
public static class SandboxDaemonHost
{
    /// <summary>The management port Tensorlake reserves for the sandbox API.</summary>
    public const int ManagementPort = 9501;

    /// <summary>How long the daemon must have answered nothing before its free heap is given back (<see cref="IdleHeapTrim"/>).</summary>
    internal static readonly TimeSpan IdleTrimAfter = TimeSpan.FromSeconds(2);

    public static async Task<int> RunAsync(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var listen = new IPEndPoint(IPAddress.Any, ManagementPort);
        var tokenFile = DaemonAccess.DefaultTokenFile;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--listen" && i + 1 < args.Length && IPEndPoint.TryParse(args[++i], out var parsed))
            {
                listen = parsed;
            }
            else if (args[i] == "--token-file" && i + 1 < args.Length)
            {
                tokenFile = args[++i];
            }
            else
            {
                await Console.Error.WriteLineAsync($"hands-sandboxd: unknown argument '{args[i]}'; usage: hands-sandboxd [--listen ADDRESS:PORT] [--token-file PATH]").ConfigureAwait(false);
                return 2;
            }
        }

        // Refusing to start beats serving a root shell to anyone who can connect.
        if (DaemonAccess.Load(tokenFile, out var problem) is not { } access)
        {
            await Console.Error.WriteLineAsync($"hands-sandboxd: {problem}; the engine writes it before starting the daemon").ConfigureAwait(false);
            return 2;
        }

        await using var app = Build(listen, access);
        await app.RunAsync().ConfigureAwait(false);
        return 0;
    }

    /// <summary>Builds the daemon's web application listening on <paramref name="listen"/>, answering <paramref name="access"/>'s holder.</summary>
    internal static WebApplication Build(IPEndPoint listen, DaemonAccess access)
    {
        // No configuration file watching: CRIU cannot dump inotify handles on overlayfs, and the daemon is dumped with
        // its sandbox on every memory snapshot and hibernation.
        var builder = SlimWebHost.CreateBuilder(new WebHostSettings($"http://{listen}", null) { WatchConfiguration = false });
        builder.Services.AddSingleton<ProcessTable>();
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IMemoryPoolFactory<byte>, ZeroingMemoryPoolFactory>();
        var app = builder.Build();
        var processes = app.Services.GetRequiredService<ProcessTable>();
        var started = DateTimeOffset.UtcNow;
        // What start-up and each burst of requests leave on the heap goes back to the host two seconds after the last
        // request: an idle daemon otherwise keeps it for the sandbox's whole life (bench density: 9.0 → 5.4 MiB).
        var inFlight = 0;
        var trim = new IdleHeapTrim(IdleTrimAfter, TimeProvider.System, () => Volatile.Read(ref inFlight) > 0);
        app.Lifetime.ApplicationStarted.Register(trim.Touch);
        app.Lifetime.ApplicationStopped.Register(trim.Dispose);
        app.Use(async (context, next) =>
        {
            Interlocked.Increment(ref inFlight);
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
                trim.Touch();
            }
        });
        app.Use(access.CheckAsync);
        app.MapGet("/api/v1/health", ctx => DaemonResponses.Json(ctx, 200, new HealthResponse { Healthy = true }, DaemonJsonContext.Default.HealthResponse));
        app.MapGet("/api/v1/info", ctx => DaemonResponses.Json(ctx, 200, new InfoResponse
        {
            Version = typeof(SandboxDaemonHost).Assembly.GetName().Version?.ToString() ?? "0",
            UptimeSecs = (long)(DateTimeOffset.UtcNow - started).TotalSeconds,
            RunningProcesses = processes.RunningCount,
            TotalProcesses = processes.TotalCount,
        }, DaemonJsonContext.Default.InfoResponse));
        // Engine extension, called before a memory snapshot or hibernation: the strings a start request's environment
        // was copied into (the runtime builds KEY=VALUE lines) are garbage by then; an aggressive collection compacts
        // the heap and gives the freed pages back, so the image does not carry them.
        app.MapPost("/api/v1/hands/scrub", ctx =>
        {
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            GC.WaitForPendingFinalizers();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            return DaemonResponses.NoContent(ctx);
        });
        ProcessEndpoints.Map(app, processes);
        FileEndpoints.Map(app);
        return app;
    }
}
