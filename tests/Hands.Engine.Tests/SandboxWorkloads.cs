using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using Hands.Engine;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests;

/// <summary>What the tests run inside sandboxes, and how they reach a sandbox's port through the engine's ingress.</summary>
internal static class SandboxWorkloads
{
    /// <summary>An HTTP server keeping a counter in memory only: GET /inc adds one, GET / reads it.</summary>
    public const string CounterServer = """
        import http.server, sys
        count = 0
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                global count
                if self.path == '/inc':
                    count += 1
                body = str(count).encode()
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        http.server.HTTPServer(('0.0.0.0', int(sys.argv[1])), Handler).serve_forever()
        """;

    public const int CounterPort = 8080;

    private static readonly HttpClient Http = new(new SocketsHttpHandler { UseProxy = false, PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = TimeSpan.FromSeconds(60) };

    /// <summary>Starts the counter server in the sandbox, waits until it answers through the ingress, then counts it up to <paramref name="count"/>.</summary>
    public static async Task StartCounterAsync(EngineServer engine, TestSandbox sandbox, int count = 0)
    {
        await StartCounterServerAsync(engine, sandbox);
        for (var i = 0; i < count; i++)
        {
            await CounterAsync(engine, sandbox.Id, "/inc");
        }
    }

    public static async Task StartCounterServerAsync(EngineServer engine, TestSandbox sandbox)
    {
        await sandbox.Proxy.WriteFileAsync("/opt/counter.py", Encoding.UTF8.GetBytes(CounterServer));
        await sandbox.Proxy.StartProcessAsync(new StartProcessRequest { Command = "python3", Args = ["/opt/counter.py", CounterPort.ToString(CultureInfo.InvariantCulture)], Name = "counter" });
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await CounterAsync(engine, sandbox.Id, "/");
                return;
            }
            catch (HttpRequestException) when (attempt < 200)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>GET on the counter through the ingress (<c>{port}-{id}.localhost</c>), with the engine's key.</summary>
    public static async Task<int> CounterAsync(EngineServer engine, string sandboxId, string path)
    {
        using var response = await PortGetAsync(engine, sandboxId, CounterPort, path, EngineFixture.ApiKey);
        response.EnsureSuccessStatusCode();
        return int.Parse(await response.Content.ReadAsStringAsync(), CultureInfo.InvariantCulture);
    }

    public static Task<HttpResponseMessage> PortGetAsync(EngineServer engine, string sandboxId, int port, string path, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, new Uri(engine.IngressAddress, path));
        request.Headers.Host = $"{port}-{sandboxId}.localhost";
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return Http.SendAsync(request);
    }

    /// <summary>Creates a named sandbox with the counter's port exposed.</summary>
    public static CreateSandboxRequest Exposed(string? name = null, int? timeoutSecs = null) => new()
    {
        Name = name,
        ExposedPorts = [CounterPort],
        TimeoutSecs = timeoutSecs,
    };

    public static string UniqueName(string prefix) => $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}";
}
