using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hands.ControlPlane;
using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Bench;

/// <summary>
/// The control plane over loopback HTTP: poll-to-ack, long-poll wake-up, event send-to-stream latency, and sustained
/// events per second on one stream. Every loop is bounded in count and time.
/// </summary>
internal static class ControlPlaneBench
{
    public static async Task<List<string>> RunAsync(int iterations)
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var scenarios = Path.Combine(data, "scenarios");
        Directory.CreateDirectory(scenarios);
        // one short message per turn, enough turns for every message the benchmark sends
        var turns = string.Join(",", Enumerable.Repeat("""{"steps":[{"message":"ok"}]}""", 20_000));
        await File.WriteAllTextAsync(Path.Combine(scenarios, "bench.json"), $"{{\"turns\":[{turns}]}}");
        const string apiKey = "sk-ant-api03-bench";
        await using var server = await ControlPlaneServer.StartAsync(new ControlPlaneOptions
        {
            Urls = "http://127.0.0.1:0",
            DataDirectory = data,
            ApiKey = apiKey,
            ScenariosDirectory = scenarios,
        });
        var rows = new List<string>();
        try
        {
            using var app = new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(apiKey), new ManagedAgentsClientOptions { BaseUrl = server.BaseAddress, MaxRetries = 0 });
            var env = await app.Environments.CreateAsync(new CreateEnvironmentRequest { Name = "bench", Config = Json("""{"type":"self_hosted"}""") });
            var key = (await app.Environments.CreateKeyAsync(env.Id)).Key;
            using var worker = app.WithCredential(ManagedAgentsCredential.Bearer(key));
            var agent = await app.Agents.CreateAsync(new CreateAgentRequest { Name = "bench", Model = Json("\"scripted:bench\"") });
            var sessionRequest = new CreateSessionRequest { Agent = Json($"\"{agent.Id}\""), EnvironmentId = env.Id };

            // warm-up: JIT, connection pool, SQLite caches
            for (var i = 0; i < 20; i++)
            {
                await app.Sessions.CreateAsync(sessionRequest);
                var w = await worker.Work.PollAsync(env.Id, 10);
                await worker.Work.AckAsync(env.Id, w!.Id);
            }

            // 1. poll-to-ack: a worker claims a queued item (poll, then ack), two round trips
            var pollAck = new Measurements("work poll + ack (item queued)");
            for (var i = 0; i < iterations; i++)
            {
                await app.Sessions.CreateAsync(sessionRequest);
                var start = Stopwatch.GetTimestamp();
                var item = await worker.Work.PollAsync(env.Id, 999, workerId: "bench");
                await worker.Work.AckAsync(env.Id, item!.Id);
                pollAck.Add(start);
            }

            rows.Add(pollAck.Row());

            // 2. long-poll wake-up: a worker is parked in a blocking poll; time from the session's creation being
            //    answered to the poll returning the new item
            var wake = new Measurements("long poll wake-up (create answered → poll returns)");
            for (var i = 0; i < iterations; i++)
            {
                var poll = worker.Work.PollAsync(env.Id, 999, workerId: "bench");
                await Task.Delay(5);
                await app.Sessions.CreateAsync(sessionRequest);
                var start = Stopwatch.GetTimestamp();
                var item = await poll;
                if (item is null)
                {
                    continue; // the create landed after the poll's 999 ms window (not expected); not a sample
                }

                wake.Add(start);
                await worker.Work.AckAsync(env.Id, item.Id);
            }

            rows.Add(wake.Row());

            // 3. send-to-stream: a user.message is posted; time until the same event arrives on an open stream
            var session = await app.Sessions.CreateAsync(sessionRequest);
            var sendToStream = new Measurements("event send → delivered on the SSE stream");
            var arrivals = new Dictionary<string, long>();
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            var pending = new Dictionary<string, TaskCompletionSource<long>>();
            var gate = new Lock();
            var reader = Task.Run(async () =>
            {
                await foreach (var e in app.Events.StreamAsync(session.Id, cancellationToken: cts.Token))
                {
                    if (e.Type == EventTypes.UserMessage && e.Text is { } marker)
                    {
                        lock (gate)
                        {
                            if (pending.Remove(marker, out var tcs))
                            {
                                tcs.TrySetResult(Stopwatch.GetTimestamp());
                            }
                        }
                    }
                }
            });
            await Task.Delay(200);
            for (var i = 0; i < iterations; i++)
            {
                var marker = "m" + i.ToString(CultureInfo.InvariantCulture);
                var tcs = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
                lock (gate)
                {
                    pending[marker] = tcs;
                }

                var start = Stopwatch.GetTimestamp();
                await app.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText(marker)] }]);
                var arrived = await tcs.Task.WaitAsync(TimeSpan.FromSeconds(10));
                sendToStream.Add(TimeSpan.FromTicks((long)((arrived - start) * (double)TimeSpan.TicksPerSecond / Stopwatch.Frequency)));
            }

            rows.Add(sendToStream.Row());
            await cts.CancelAsync();
            try
            {
                await reader;
            }
            catch (OperationCanceledException)
            {
            }

            // 4. sustained events/s on one stream: batches of 50 messages (each turn emits 6 more events)
            var busy = await app.Sessions.CreateAsync(sessionRequest);
            using var cts2 = new CancellationTokenSource(TimeSpan.FromMinutes(2));
            const int batches = 40;
            const int perBatch = 50;
            var expected = batches * perBatch * 7;
            var received = 0;
            var firstAt = 0L;
            var lastAt = 0L;
            var streamer = Task.Run(async () =>
            {
                await foreach (var e in app.Events.StreamAsync(busy.Id, cancellationToken: cts2.Token))
                {
                    if (received == 0)
                    {
                        firstAt = Stopwatch.GetTimestamp();
                    }

                    lastAt = Stopwatch.GetTimestamp();
                    if (++received >= expected)
                    {
                        break;
                    }
                }
            });
            await Task.Delay(200);
            var sendStart = Stopwatch.GetTimestamp();
            for (var b = 0; b < batches; b++)
            {
                var batch = Enumerable.Range(0, perBatch).Select(_ => new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText("x")] });
                await app.Events.SendAsync(busy.Id, batch);
            }

            await streamer;
            var seconds = Stopwatch.GetElapsedTime(sendStart, lastAt).TotalSeconds;
            rows.Add(string.Create(CultureInfo.InvariantCulture,
                $"| sustained stream throughput | {received} events | {received / seconds:0} events/s | | ({batches} sends of {perBatch} messages, {seconds:0.00} s) |"));
        }
        finally
        {
            await server.DisposeAsync();
            Directory.Delete(data, recursive: true);
        }

        return rows;
    }

    private static JsonElement Json(string json) => JsonDocument.Parse(json).RootElement.Clone();
}
