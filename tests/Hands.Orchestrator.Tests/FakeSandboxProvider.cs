using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// A sandbox provider on loopback with just what a spawn and a claim recovery ask of it: sandboxes looked up by name
/// (existing ones are added by the test; none is ever created), and each sandbox's process API (start, look up, stdin,
/// kill). <see cref="SecretDelivered"/> stands in for the worker: it runs when a worker's stdin is closed, with the
/// work secret that was written to it. <see cref="Intercept"/> lets a test answer a request itself.
/// </summary>
internal sealed class FakeSandboxProvider : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, string> _sandboxes = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Process> _processes = new(StringComparer.Ordinal);
    private int _pids = 100;

    private FakeSandboxProvider(LoopbackStub stub)
    {
        Stub = stub;
        Client = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = stub.BaseAddress, MaxRetries = 0 });
    }

    public LoopbackStub Stub { get; }

    public TensorlakeClient Client { get; }

    /// <summary>The worker's part: called with the process name and what was written to its stdin, when stdin is closed.</summary>
    public Func<string, string, Task>? SecretDelivered { get; set; }

    /// <summary>Answers a request instead of the fake when it returns true.</summary>
    public Func<HttpContext, Task<bool>>? Intercept { get; set; }

    /// <summary>Requests the fake had no answer for.</summary>
    public ConcurrentQueue<string> Unexpected { get; } = new();

    public static async Task<FakeSandboxProvider> StartAsync()
    {
        FakeSandboxProvider? provider = null;
        var stub = await LoopbackStub.StartAsync(context => provider!.HandleAsync(context));
        provider = new FakeSandboxProvider(stub);
        return provider;
    }

    public void AddSandbox(string name, string status = SandboxStatus.Running) => _sandboxes[name] = status;

    /// <summary>A worker process already there, its secret delivered (stdin closed) unless <paramref name="stdinOpen"/>.</summary>
    public void AddRunningProcess(string name, bool stdinOpen = false) =>
        _processes[name] = new Process(Interlocked.Increment(ref _pids), name) { StdinOpen = stdinOpen };

    public bool IsRunning(string name) => _processes.TryGetValue(name, out var p) && p.Status == "running";

    private async Task HandleAsync(HttpContext context)
    {
        if (Intercept is { } intercept && await intercept(context))
        {
            return;
        }

        var path = context.Request.Path.Value ?? "";
        var method = context.Request.Method;
        const string lifecycle = "/v1/namespaces/default/sandboxes/";
        const string processes = "/api/v1/processes";
        if (method == "GET" && path.StartsWith(lifecycle, StringComparison.Ordinal))
        {
            var name = Uri.UnescapeDataString(path[lifecycle.Length..]);
            if (!_sandboxes.TryGetValue(name, out var status))
            {
                await NotFoundAsync(context, $"sandbox {name}");
                return;
            }

            await JsonAsync(context, JsonSerializer.Serialize(new SandboxInfo
            {
                Id = name,
                Name = name,
                Status = status,
                SandboxUrl = Stub.BaseAddress.ToString().TrimEnd('/'),
            }, SandboxesJsonContext.Default.SandboxInfo));
            return;
        }

        if (method == "POST" && path == processes)
        {
            var request = await JsonSerializer.DeserializeAsync(context.Request.Body, SandboxesJsonContext.Default.StartProcessRequest);
            var process = new Process(Interlocked.Increment(ref _pids), request!.Name ?? "") { StdinOpen = true };
            _processes[process.Name] = process;
            await JsonAsync(context, Info(process));
            return;
        }

        if (path.StartsWith(processes + "/", StringComparison.Ordinal))
        {
            var parts = path[(processes.Length + 1)..].Split('/');
            var found = Find(Uri.UnescapeDataString(parts[0]));
            if (found is null)
            {
                await NotFoundAsync(context, $"process {parts[0]}");
                return;
            }

            switch (method, parts.Length > 1 ? string.Join('/', parts[1..]) : "")
            {
                case ("GET", ""):
                    await JsonAsync(context, Info(found));
                    return;
                case ("POST", "stdin"):
                    using (var reader = new StreamReader(context.Request.Body))
                    {
                        found.Stdin += await reader.ReadToEndAsync();
                    }

                    context.Response.StatusCode = 204;
                    return;
                case ("POST", "stdin/close"):
                    found.StdinOpen = false;
                    if (SecretDelivered is { } deliver)
                    {
                        await deliver(found.Name, found.Stdin);
                    }

                    context.Response.StatusCode = 204;
                    return;
                case ("DELETE", ""):
                    found.Status = "signaled";
                    context.Response.StatusCode = 204;
                    return;
            }
        }

        Unexpected.Enqueue($"{method} {path}");
        context.Response.StatusCode = 501;
    }

    private Process? Find(string reference) =>
        _processes.TryGetValue(reference, out var byName) ? byName
            : _processes.Values.FirstOrDefault(p => p.Pid.ToString(CultureInfo.InvariantCulture) == reference);

    private static string Info(Process process) => JsonSerializer.Serialize(new ProcessInfo
    {
        Pid = process.Pid,
        Status = process.Status,
        StdinWritable = process.StdinOpen,
    }, SandboxesJsonContext.Default.ProcessInfo);

    private static async Task JsonAsync(HttpContext context, string json)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json);
    }

    private static async Task NotFoundAsync(HttpContext context, string what)
    {
        context.Response.StatusCode = 404;
        await JsonAsync(context, $$"""{"message":"{{what}} not found"}""");
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Stub.DisposeAsync();
    }

    private sealed class Process(int pid, string name)
    {
        public int Pid { get; } = pid;
        public string Name { get; } = name;
        public string Status { get; set; } = "running";
        public bool StdinOpen { get; set; }
        public string Stdin { get; set; } = "";
    }
}
