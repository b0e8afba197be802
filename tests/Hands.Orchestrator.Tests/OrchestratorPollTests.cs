using System.Net;
using System.Text;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Sandboxes.Client;
using Hands.Testing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// <c>hands poll</c>'s loop is the one layer that retries a poll: a work queue answering 503 gets one request per turn
/// of the loop (not the API client's three), and the backoff between turns runs on the orchestrator's clock.
/// </summary>
public sealed class OrchestratorPollTests
{
    /// <summary>Counts the loop's turns: it warns once per failed poll it retries.</summary>
    private sealed class RetryWarnings : ILogger
    {
        public int Count;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel == LogLevel.Warning && formatter(state, exception).StartsWith("poll failed", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref Count);
            }
        }
    }

    private sealed class OverloadedQueue(CancellationTokenSource stopAfter, int failures) : HttpMessageHandler
    {
        public int Polls;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Assert.EndsWith("/work/poll", request.RequestUri!.AbsolutePath, StringComparison.Ordinal);
            if (Interlocked.Increment(ref Polls) > failures)
            {
                await stopAfter.CancelAsync();
                cancellationToken.ThrowIfCancellationRequested();
            }

            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable)
            {
                Content = new StringContent("""{"type":"error","error":{"type":"overloaded_error","message":"busy"}}""", Encoding.UTF8, "application/json"),
            };
        }
    }

    [Fact]
    public async Task A_failing_poll_is_retried_by_the_loop_alone_on_the_orchestrators_clock()
    {
        using var stop = new CancellationTokenSource();
        using var queue = new OverloadedQueue(stop, failures: 3);
        using var http = new HttpClient(queue);
        var time = new FakeTimeProvider();
        var warnings = new RetryWarnings();
        // The client would retry a poll twice on the same fake clock, if it were asked to.
        using var environment = new ManagedAgentsClient(ManagedAgentsCredential.Bearer("env-key"),
            new ManagedAgentsClientOptions { BaseUrl = new Uri("http://127.0.0.1:9"), HttpClient = http, MaxRetries = 2, TimeProvider = time });
        using var sandboxes = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("https://api.tensorlake.test"), Handler = queue });
        await using var orchestrator = new WorkQueueOrchestrator(environment, sandboxes,
            new OrchestratorOptions { EnvironmentId = "env_1", EnvironmentKey = "env-key", TimeProvider = time, Logger = warnings });
        var started = time.GetUtcNow();

        var run = orchestrator.RunPollingAsync(999, stop.Token);
        for (var turns = 0; !run.IsCompleted; turns++)
        {
            Assert.True(turns < 1_000_000, "the loop did not stop");
            time.Advance(TimeSpan.FromMilliseconds(250));
            await Task.Yield();
        }

        await run;
        Assert.Equal(4, queue.Polls);
        Assert.Equal(3, warnings.Count);
        // 1 s, 2 s and 4 s, each less up to a quarter for jitter, on the fake clock.
        Assert.True(time.GetUtcNow() - started >= TimeSpan.FromSeconds(5.25));
    }
}
