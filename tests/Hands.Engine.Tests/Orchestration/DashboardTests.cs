using Hands.Cli;
using Hands.Cli.Dashboard;
using Hands.Orchestrator;
using Microsoft.Playwright;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// <c>--dashboard</c>'s promise, seen as a person sees it: the Aspire dashboard (the real program, from the NuGet
/// packages folder) receives one real session's spans, the orchestrator's and engine's from this process and the
/// worker's from its sandbox over OTLP/HTTP, and Debian's Chromium, driven headless by Playwright, finds the session's
/// trace in it with the worker's tool spans. The browser reaches loopback only: every other host goes to a dead proxy
/// port, resolves to nothing, and any request for one is counted and fails the test.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class DashboardTests(EngineFixture engine)
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly float WaitMs = (float)TimeSpan.FromSeconds(120).TotalMilliseconds;

    [Fact]
    public async Task A_sessions_trace_with_its_tool_spans_shows_in_the_dashboard_in_a_headless_browser()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: scripts/lib/prerequisites.sh installs Debian's chromium");
        var binary = AspireDashboard.Locate(Environment.GetEnvironmentVariable, AppContext.BaseDirectory);
        Assert.True(binary is not null, $"{AspireDashboard.PackageId} {AspireDashboard.PackageVersion} is not in the NuGet packages folder (restoring Hands.Cli brings it)");
        // On the fixture's OTLP port: the one the engine forwards into sandboxes, so workers reach the dashboard.
        await using var dashboard = await AspireDashboard.StartAsync(binary, engine.OtlpPort, CancellationToken.None);

        using var telemetry = HostTelemetry.ToOtlpHttp("dashboard-tests", dashboard.OtlpHttpEndpoint);
        await using var cp = await LocalControlPlane.StartAsync(engine);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o => o.WorkerOtlpPort = engine.OtlpPort));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        try
        {
            // One scripted session: write hello.txt, read it back.
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "go"));
            await orchestrator.WhenIdleAsync();
            Assert.True(telemetry.Flush(), "this process's spans did not reach the dashboard:\n" + dashboard.Output);
            // The sandbox stays until the browser has seen the worker's spans: it exports them when it idles out.
            await FindTraceInBrowserAsync(dashboard, session);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }

    private static async Task FindTraceInBrowserAsync(AspireDashboard dashboard, string session)
    {
        var userData = Directory.CreateTempSubdirectory("hands-dashboard-browser-");
        var offLoopback = new List<string>();
        try
        {
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(userData.FullName, new BrowserTypeLaunchPersistentContextOptions
            {
                ExecutablePath = Chromium,
                Headless = true,
                Args =
                [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    // Belt and braces for "loopback only": names resolve to nothing, and anything not on loopback goes to a
                    // proxy on a port nobody listens on (loopback itself bypasses proxies).
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9",
                ],
            });
            await browser.RouteAsync("**/*", async route =>
            {
                if (new Uri(route.Request.Url).Host == "127.0.0.1")
                {
                    await route.ContinueAsync();
                    return;
                }

                lock (offLoopback)
                {
                    offLoopback.Add(route.Request.Url);
                }

                await route.AbortAsync();
            });
            var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
            try
            {
                await page.GotoAsync(new Uri(dashboard.Url, "traces").ToString());
                // The session's trace: its root is the orchestrator's span for the work item.
                var trace = page.GetByText("hands.orchestrator.spawn").First;
                await Assertions.Expect(trace).ToBeVisibleAsync(new() { Timeout = WaitMs });
                await trace.ClickAsync();
                // Polled, not awaited as a navigation event: the dashboard routes in the page (a same-document
                // navigation), and a wait that starts after the route changed can miss it (seen once in CI, with the
                // detail page already on screen).
                await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/traces/detail/"), new() { Timeout = WaitMs });
                // The worker exports when it idles out; the detail page shows its spans as they arrive.
                foreach (var span in new[] { "anthropic.environment.work", "anthropic.tool_use write", "anthropic.tool_use read", "hands.sandbox.create" })
                {
                    await Assertions.Expect(page.GetByText(span).First).ToBeVisibleAsync(new() { Timeout = WaitMs });
                }

                await Assertions.Expect(page.GetByText("hands-worker").First).ToBeVisibleAsync(new() { Timeout = WaitMs });
                // For a person to look at what the test saw: HANDS_DASHBOARD_SCREENSHOT=/some/file.png.
                if (Environment.GetEnvironmentVariable("HANDS_DASHBOARD_SCREENSHOT") is { Length: > 0 } screenshot)
                {
                    await page.ScreenshotAsync(new() { Path = screenshot, FullPage = true });
                }
            }
            catch
            {
                await page.ScreenshotAsync(new() { Path = Path.Combine(Path.GetTempPath(), $"hands-dashboard-{session}.png"), FullPage = true });
                throw;
            }
        }
        finally
        {
            userData.Delete(recursive: true);
        }

        Assert.Empty(offLoopback);
    }
}
