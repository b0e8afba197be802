using System.CommandLine;

namespace Hands.Cli.Dashboard;

/// <summary>
/// What <c>--dashboard</c> does for <c>hands up</c> and <c>hands demo</c>: starts the <see cref="AspireDashboard"/> on
/// loopback, exports this process's traces and metrics to it, puts <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> (and
/// <c>_PROTOCOL=http/protobuf</c>) in this process's environment so every process it starts inherits them, and names
/// the receiver the stack hands its workers. On dispose: flushes, then stops the dashboard.
/// </summary>
internal sealed class DashboardLaunch : IAsyncDisposable
{
    private readonly HostTelemetry _telemetry;

    private DashboardLaunch(AspireDashboard dashboard, HostTelemetry telemetry)
    {
        Dashboard = dashboard;
        _telemetry = telemetry;
    }

    /// <summary>The running dashboard.</summary>
    public AspireDashboard Dashboard { get; }

    /// <summary>The <c>--dashboard</c> option.</summary>
    public static Option<bool> CreateOption() => new("--dashboard")
    {
        Description = "Start the Aspire trace dashboard on 127.0.0.1 (unsecured: loopback only) and send every process's traces to it",
    };

    /// <summary>Finds and starts the dashboard for <paramref name="command"/> (the <c>service.name</c> is <c>hands-{command}</c>).</summary>
    public static async Task<DashboardLaunch> StartAsync(string command, Action<string> progress, CancellationToken ct)
    {
        var binary = AspireDashboard.Locate(Environment.GetEnvironmentVariable, AppContext.BaseDirectory)
            ?? throw new DashboardException(
                $"--dashboard: the Aspire dashboard ({AspireDashboard.PackageId} {AspireDashboard.PackageVersion}) is not on this machine: " +
                "scripts/install.sh installs it beside the releases, building Hands from a clone restores it into the NuGet packages folder, " +
                $"or name the program in {AspireDashboard.BinaryVariable}");
        progress($"starting the Aspire dashboard ({binary})");
        var dashboard = await AspireDashboard.StartAsync(binary, 0, ct);
        try
        {
            var endpoint = dashboard.OtlpHttpEndpoint.ToString().TrimEnd('/');
            Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);
            Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
            var telemetry = HostTelemetry.ToOtlpHttp(command, dashboard.OtlpHttpEndpoint);
            progress($"dashboard at {dashboard.Url} (OTLP/HTTP {endpoint}, OTLP/gRPC {dashboard.OtlpGrpcEndpoint.ToString().TrimEnd('/')})");
            return new DashboardLaunch(dashboard, telemetry);
        }
        catch
        {
            await dashboard.DisposeAsync();
            throw;
        }
    }

    /// <summary>Sends what this process has buffered to the dashboard now.</summary>
    public bool Flush() => _telemetry.Flush();

    /// <summary>Flushes this process's telemetry, then stops the dashboard.</summary>
    public async ValueTask DisposeAsync()
    {
        _telemetry.Dispose();
        await Dashboard.DisposeAsync();
    }
}
