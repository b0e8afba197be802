using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Bench;

/// <summary>
/// The worker: process start to first HTTP request, and per-tool-call overhead (a <c>read</c> of a small file, from
/// the control plane emitting <c>agent.tool_use</c> to it recording the <c>user.tool_result</c>), hands-worker
/// (NativeAOT) against the official TypeScript worker on the same control plane, in one run.
/// </summary>
internal static class WorkerBench
{
    public static async Task<List<string>> RunAsync(int iterations, string repoRoot)
    {
        var binary = Path.Combine(repoRoot, "artifacts", "hands-worker", "hands-worker");
        var conformance = Path.Combine(repoRoot, "tests", "conformance");
        if (!File.Exists(binary))
        {
            throw new InvalidOperationException($"{binary} is missing: publish it first (dotnet publish src/Hands.Worker -c Release -r linux-x64 -o artifacts/hands-worker)");
        }

        if (!Directory.Exists(Path.Combine(conformance, "node_modules", "@anthropic-ai", "sdk")))
        {
            throw new InvalidOperationException("tests/conformance/node_modules is missing: run `npm ci` there (scripts/test.sh does)");
        }

        var rows = new List<string>();
        var starts = Math.Min(iterations, 30);
        var aot = await StartToFirstRequestAsync("hands-worker (NativeAOT) start → first request", starts, () => new ProcessStartInfo(binary) { ArgumentList = { "run" } });
        var ts = await StartToFirstRequestAsync("official TypeScript worker start → first request", starts,
            () => new ProcessStartInfo("node") { ArgumentList = { Path.Combine(conformance, "start-probe.cjs") }, WorkingDirectory = conformance });
        rows.Add(aot.Row("< 30 ms"));
        rows.Add(ts.Row());
        rows.Add(Ratio("start, TypeScript / hands-worker", ts, aot));

        var calls = Math.Min(iterations, 200);
        var ours = await PerCallAsync("hands-worker per read call (tool_use delivered → result posted)", calls, binary, conformance, official: false);
        var theirs = await PerCallAsync("official TypeScript worker per read call", calls, binary, conformance, official: true);
        rows.Add(ours.Row("< 2 ms, ≤ ½ of TypeScript"));
        rows.Add(theirs.Row());
        rows.Add(Ratio("per call, hands-worker / TypeScript", ours, theirs));
        return rows;
    }

    internal static string Ratio(string name, Measurements numerator, Measurements denominator) => string.Create(CultureInfo.InvariantCulture,
        $"| {name} | | {numerator.Percentile(50) / denominator.Percentile(50):0.00}x | {numerator.Percentile(95) / denominator.Percentile(95):0.00}x | ratio of p50s, of p95s |");

    private static async Task<Measurements> StartToFirstRequestAsync(string name, int runs, Func<ProcessStartInfo> create)
    {
        var m = new Measurements(name);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        for (var i = 0; i < runs + 2; i++)
        {
            var psi = create();
            psi.UseShellExecute = false;
            psi.RedirectStandardError = true;
            psi.RedirectStandardOutput = true;
            psi.Environment["ANTHROPIC_BASE_URL"] = $"http://127.0.0.1:{port}";
            psi.Environment["ANTHROPIC_ENVIRONMENT_ID"] = "env_bench";
            psi.Environment["ANTHROPIC_ENVIRONMENT_KEY"] = "sk-ant-oat01-bench";
            psi.Environment["ANTHROPIC_SESSION_ID"] = "sesn_bench";
            psi.Environment["ANTHROPIC_WORK_ID"] = "work_bench";
            var start = Stopwatch.GetTimestamp();
            using var process = Process.Start(psi)!;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            using var client = await listener.AcceptTcpClientAsync(timeout.Token);
            var buffer = new byte[1];
            _ = await client.GetStream().ReadAsync(buffer, timeout.Token); // the first byte of the first request
            var elapsed = Stopwatch.GetElapsedTime(start);
            if (i >= 2)
            {
                m.Add(elapsed); // the first two runs warm the page cache
            }

            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            while (listener.Pending())
            {
                (await listener.AcceptTcpClientAsync()).Dispose();
            }
        }

        return m;
    }

    internal static async Task<Measurements> PerCallAsync(string name, int calls, string binary, string conformance, bool official,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-bench-worker-" + Guid.NewGuid().ToString("N")[..8]);
        var scenarios = Path.Combine(data, "scenarios");
        var workdir = Path.Combine(data, "work");
        Directory.CreateDirectory(scenarios);
        Directory.CreateDirectory(workdir);
        await File.WriteAllTextAsync(Path.Combine(workdir, "small.txt"), "a small file\nof two lines\n");
        var steps = string.Join(",", Enumerable.Repeat("""{"tool":"read","input":{"file_path":"small.txt"}}""", calls + 10));
        await File.WriteAllTextAsync(Path.Combine(scenarios, "reads.json"), $"{{\"turns\":[{{\"steps\":[{steps}]}}]}}");
        const string apiKey = "sk-ant-api03-bench";
        try
        {
            await using var server = await ControlPlaneServer.StartAsync(new ControlPlaneOptions
            {
                Urls = "http://127.0.0.1:0", DataDirectory = Path.Combine(data, "cp"), ApiKey = apiKey, ScenariosDirectory = scenarios,
            });
            using var app = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(apiKey), new ManagedAgentsClientOptions { BaseUrl = server.BaseAddress });
            var env = await app.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "bench", Config = Json("""{"type":"self_hosted"}""") });
            var key = (await app.Environments.CreateKeyAsync(env.Id)).Key;
            var agent = await app.Agents.CreateAsync(new CreateAgentRequest { Name = "reader", Model = Json("\"scripted:reads\""), Tools = [Json("""{"type":"agent_toolset_20260401"}""")] });
            var session = await app.Sessions.CreateAsync(new CreateSessionRequest
            {
                Agent = Json($"\"{agent.Id}\""),
                EnvironmentId = env.Id,
                InitialEvents = [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("read it")] }],
            });
            using var workerClient = app.WithCredential(ManagedAgentsCredential.Bearer(key));
            var item = (await workerClient.Work.PollAsync(env.Id, 500))!;
            await workerClient.Work.AckAsync(env.Id, item.Id);
            await using var relay = new TimingRelay(server.BaseAddress);
            var baseUrl = relay.Address.ToString().TrimEnd('/');
            ProcessStartInfo psi;
            if (official)
            {
                psi = new ProcessStartInfo("node") { ArgumentList = { Path.Combine(conformance, "worker-serve.cjs") }, WorkingDirectory = conformance };
                psi.Environment["HANDS_BASE_URL"] = baseUrl;
                psi.Environment["HANDS_ENVIRONMENT_ID"] = env.Id;
                psi.Environment["HANDS_ENVIRONMENT_KEY"] = key;
                psi.Environment["HANDS_SESSION_ID"] = session.Id;
                psi.Environment["HANDS_WORK_ID"] = item.Id;
                psi.Environment["HANDS_WORK_SECRET"] = item.Secret;
                psi.Environment["HANDS_WORKDIR"] = workdir;
            }
            else
            {
                psi = new ProcessStartInfo(binary) { ArgumentList = { "run", "--max-idle", "300ms", "--workdir", workdir } };
                psi.Environment["ANTHROPIC_BASE_URL"] = baseUrl;
                psi.Environment["ANTHROPIC_ENVIRONMENT_ID"] = env.Id;
                psi.Environment["ANTHROPIC_SESSION_ID"] = session.Id;
                psi.Environment["ANTHROPIC_WORK_ID"] = item.Id;
                psi.Environment["ANTHROPIC_WORK_SECRET"] = item.Secret;
            }

            foreach (var (variable, value) in environment ?? new Dictionary<string, string>())
            {
                psi.Environment[variable] = value;
            }

            psi.UseShellExecute = false;
            psi.RedirectStandardError = true;
            psi.RedirectStandardOutput = true;
            using var process = Process.Start(psi)!;
            _ = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            await process.WaitForExitAsync(timeout.Token);

            var history = await app.Events.ListAllAsync(session.Id).ToListAsync();
            var answered = history.Count(e => e.Type == EventTypes.UserToolResult);
            if (answered < calls)
            {
                throw new InvalidOperationException($"{name}: only {answered} of {calls + 10} calls were answered");
            }

            var m = new Measurements(name);
            foreach (var interval in relay.Intervals().Skip(10)) // the first calls warm up
            {
                m.Add(interval);
            }

            return m;
        }
        finally
        {
            Directory.Delete(data, recursive: true);
        }
    }

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
