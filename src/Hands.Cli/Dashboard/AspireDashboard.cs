using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Hands.Common;

namespace Hands.Cli.Dashboard;

/// <summary>
/// The Aspire dashboard (NuGet <c>Aspire.Dashboard.Sdk.linux-x64</c>, a self-contained program) as a child process: a
/// trace, metrics and log viewer with its own OTLP receivers. It listens on 127.0.0.1 only, and only because of that
/// runs unsecured (no browser token, anonymous OTLP): on loopback every client is this machine's own. Killed with its
/// process tree on dispose.
/// </summary>
internal sealed class AspireDashboard : IAsyncDisposable
{
    /// <summary>The NuGet package the dashboard comes in (its <c>tools/</c> folder holds the program).</summary>
    public const string PackageId = "Aspire.Dashboard.Sdk.linux-x64";

    /// <summary>The package version Hands is built and tested with (Directory.Packages.props does not govern it: it is a download, not a reference).</summary>
    public const string PackageVersion = "13.6.5";

    /// <summary>Names a dashboard program to use instead of the ones <see cref="Locate"/> looks for.</summary>
    public const string BinaryVariable = "HANDS_DASHBOARD_BINARY";

    private const int MaxOutputChars = 64 * 1024;
    private static readonly TimeSpan StartBudget = TimeSpan.FromSeconds(90);

    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private AspireDashboard(Process process, Uri url, Uri otlpHttp, Uri otlpGrpc)
    {
        _process = process;
        Url = url;
        OtlpHttpEndpoint = otlpHttp;
        OtlpGrpcEndpoint = otlpGrpc;
    }

    /// <summary>Where a browser opens it.</summary>
    public Uri Url { get; }

    /// <summary>Its OTLP/HTTP receiver (<c>http/protobuf</c>; the exporter appends <c>/v1/traces</c> and <c>/v1/metrics</c>).</summary>
    public Uri OtlpHttpEndpoint { get; }

    /// <summary>Its OTLP/gRPC receiver.</summary>
    public Uri OtlpGrpcEndpoint { get; }

    /// <summary>What it printed so far (bounded), for error messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>
    /// The dashboard program, first found of: <c>HANDS_DASHBOARD_BINARY</c>; the installed bundle's shared copy
    /// (<c>{prefix}/dashboard/{version}/Aspire.Dashboard</c>, written by scripts/install.sh beside
    /// <c>{prefix}/releases/</c>); the NuGet packages folder (<c>NUGET_PACKAGES</c>, else <c>~/.nuget/packages</c>),
    /// where building Hands restores it. Null when none exists.
    /// </summary>
    public static string? Locate(Func<string, string?> environment, string applicationDirectory)
    {
        if (environment(BinaryVariable) is { Length: > 0 } named)
        {
            return File.Exists(named) ? Path.GetFullPath(named) : null;
        }

        // hands lives in {prefix}/releases/{version}/; the dashboard is kept once per prefix, not once per release.
        var bundled = Path.GetFullPath(Path.Combine(applicationDirectory, "..", "..", "dashboard", PackageVersion, "Aspire.Dashboard"));
        if (File.Exists(bundled))
        {
            return bundled;
        }

        var packages = environment("NUGET_PACKAGES") is { Length: > 0 } folder
            ? folder
            : Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var restored = Path.Combine(packages, PackageId.ToLowerInvariant(), PackageVersion, "tools", "Aspire.Dashboard");
        return File.Exists(restored) ? restored : null;
    }

    /// <summary>
    /// Starts <paramref name="binary"/> on free loopback ports (the OTLP/HTTP receiver on <paramref name="otlpHttpPort"/>
    /// when not 0) and waits until its page and its OTLP/HTTP receiver answer.
    /// </summary>
    public static async Task<AspireDashboard> StartAsync(string binary, int otlpHttpPort, CancellationToken ct)
    {
        var url = new Uri($"http://127.0.0.1:{FreePort()}");
        var otlpHttp = new Uri($"http://127.0.0.1:{(otlpHttpPort == 0 ? FreePort() : otlpHttpPort)}");
        var otlpGrpc = new Uri($"http://127.0.0.1:{FreePort()}");
        var info = new ProcessStartInfo(binary)
        {
            WorkingDirectory = Path.GetDirectoryName(binary)!,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // A clean environment: nothing of ours (API keys, OTEL_* headers) reaches a program that does not need it, and
        // the dashboard does not export its own telemetry anywhere.
        info.Environment.Clear();
        info.Environment["PATH"] = Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin";
        info.Environment["HOME"] = Environment.GetEnvironmentVariable("HOME") ?? "/root";
        info.Environment["ASPNETCORE_URLS"] = url.ToString();
        info.Environment["ASPIRE_DASHBOARD_OTLP_HTTP_ENDPOINT_URL"] = otlpHttp.ToString();
        info.Environment["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] = otlpGrpc.ToString();
        // Unsecured only because every endpoint above is 127.0.0.1: no token to paste, no OTLP key to hand out.
        info.Environment["ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS"] = "true";
        info.Environment["Dashboard__ApplicationName"] = "Hands";
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var process = Process.Start(info) ?? throw new DashboardException($"the dashboard ({binary}) did not start");
        var dashboard = new AspireDashboard(process, url, otlpHttp, otlpGrpc);
        process.OutputDataReceived += (_, e) => dashboard.Append(e.Data);
        process.ErrorDataReceived += (_, e) => dashboard.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await dashboard.WaitUntilServingAsync(ct);
            return dashboard;
        }
        catch
        {
            await dashboard.DisposeAsync();
            throw;
        }
    }

    private async Task WaitUntilServingAsync(CancellationToken ct)
    {
        using var budget = CancellationTokenSource.CreateLinkedTokenSource(ct);
        budget.CancelAfter(StartBudget);
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(5) };
        // Bounded by the budget: one try every 200 ms, at most 90 s.
        while (true)
        {
            if (_process.HasExited)
            {
                throw new DashboardException($"the dashboard exited with code {_process.ExitCode} before serving:\n{Output}");
            }

            try
            {
                using var page = await http.GetAsync(Url, budget.Token);
                // An OTLP/HTTP receiver answers a GET of its traces path with 405 (POST only): it is listening.
                using var otlp = await http.GetAsync(new Uri(OtlpHttpEndpoint, "v1/traces"), budget.Token);
                if ((int)page.StatusCode < 500 && (int)otlp.StatusCode < 500)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new DashboardException($"the dashboard did not serve within {StartBudget.TotalSeconds:0} s:\n{Output}");
            }

            try
            {
                await Task.Delay(200, budget.Token);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new DashboardException($"the dashboard did not serve within {StartBudget.TotalSeconds:0} s:\n{Output}");
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            if (_output.Length + line.Length < MaxOutputChars)
            {
                _output.AppendLine(line);
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Kills the dashboard (and anything it started) and waits for it to be gone, at most 10 s.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException or System.ComponentModel.Win32Exception)
        {
            // Gone already, or not reaped in time: nothing more to do here.
        }

        _process.Dispose();
    }
}

/// <summary>The dashboard could not be found or started.</summary>
public sealed class DashboardException(string message) : HandsException(message);
