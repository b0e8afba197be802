using System.Net;
using System.Text;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Sandboxes.Tests;

/// <summary>
/// The client's one retry layer on a fake clock: how many requests a failing call sends, what trace they carry, and
/// the typed exceptions for what the client decides itself (no answer, no answer in time, a wait that ran out).
/// </summary>
public sealed class ResilienceTests
{
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(250);

    private static (TensorlakeClient Client, ScriptedHandler Handler, FakeTimeProvider Time) Client(
        Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> reply, int maxRetries = 5)
    {
        var handler = new ScriptedHandler(reply);
        var time = new FakeTimeProvider();
        var client = new TensorlakeClient(new TensorlakeClientOptions
        {
            ApiUrl = new Uri("https://api.tensorlake.test"),
            ApiKey = "tl_apiKey_test",
            Handler = handler,
            MaxRetries = maxRetries,
            LifecycleTimeout = TimeSpan.FromSeconds(10),
            TimeProvider = time,
        });
        return (client, handler, time);
    }

    private static Task<HttpResponseMessage> Answer(HttpStatusCode status, string body, string type = "application/json") =>
        Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, type) });

    private static string TraceId(string? traceParent) => traceParent!.Split('-')[1];

    private static string SpanId(string? traceParent) => traceParent!.Split('-')[2];

    [Fact]
    public async Task A_get_that_keeps_failing_with_503_is_sent_MaxRetries_plus_one_times_under_one_trace_id()
    {
        var (client, handler, time) = Client((_, _) => Answer(HttpStatusCode.ServiceUnavailable, "busy", "text/plain"), maxRetries: 5);
        using var _ = client;
        var started = time.GetUtcNow();

        var ex = await Assert.ThrowsAsync<TensorlakeException>(() => FakeClock.RunAsync(time, () => client.GetAsync("sbx_1"), Step));

        Assert.Equal(503, ex.Status);
        Assert.Equal(6, handler.Requests.Count);
        var traces = handler.Requests.Select(r => r.TraceParent).ToList();
        Assert.All(traces, t => Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-01$", t));
        Assert.Single(traces.Select(TraceId).Distinct());
        Assert.Equal(6, traces.Select(SpanId).Distinct().Count());
        Assert.Equal(TraceId(traces[0]), ex.TraceId);
        // The SDK's backoff, 0.75 × (0.1 + 0.2 + 0.4 + 0.8 + 1.6) s, waited on the fake clock (the test never sleeps).
        Assert.True(time.GetUtcNow() - started >= TimeSpan.FromSeconds(2.325));
    }

    [Fact]
    public async Task A_non_idempotent_call_is_sent_once_whatever_the_answer()
    {
        var (client, handler, time) = Client((_, _) => Answer(HttpStatusCode.ServiceUnavailable, "busy", "text/plain"));
        using var _ = client;

        var ex = await Assert.ThrowsAsync<TensorlakeException>(() => FakeClock.RunAsync(time, () => client.ResumeAsync("sbx_1"), Step));

        Assert.Equal(503, ex.Status);
        Assert.Single(handler.Requests);
    }

    [Fact]
    public async Task A_connection_that_keeps_failing_is_retried_then_thrown_as_a_connection_exception()
    {
        var (client, handler, time) = Client((_, _) => throw new HttpRequestException("connection refused"), maxRetries: 2);
        using var _ = client;

        var ex = await Assert.ThrowsAsync<TensorlakeConnectionException>(() => FakeClock.RunAsync(time, () => client.ListAsync(), Step));

        Assert.Equal(0, ex.Status);
        Assert.Equal(3, handler.Requests.Count);
        Assert.Single(handler.Requests.Select(r => TraceId(r.TraceParent)).Distinct());
    }

    [Fact]
    public async Task A_try_that_gets_no_answer_in_time_is_retried_then_thrown_as_a_timeout_exception()
    {
        var (client, handler, time) = Client(async (_, ct) =>
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, ct);
            throw new InvalidOperationException("unreachable");
        }, maxRetries: 1);
        using var _ = client;
        var started = time.GetUtcNow();

        var ex = await Assert.ThrowsAsync<TensorlakeTimeoutException>(() => FakeClock.RunAsync(time, () => client.GetAsync("sbx_1"), Step));

        Assert.Equal(2, handler.Requests.Count);
        Assert.Equal(TraceId(handler.Requests.First().TraceParent), ex.TraceId);
        Assert.True(time.GetUtcNow() - started >= TimeSpan.FromSeconds(20)); // two tries of the 10 s lifecycle timeout
    }

    [Fact]
    public async Task The_caller_cancelling_is_not_a_timeout_and_is_not_retried()
    {
        using var cts = new CancellationTokenSource();
        var (client, handler, _) = Client(async (_, ct) =>
        {
            await cts.CancelAsync();
            ct.ThrowIfCancellationRequested();
            throw new InvalidOperationException("unreachable");
        });
        using var __ = client;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetAsync("sbx_1", cts.Token));

        Assert.Single(handler.Requests);
    }

    [Fact]
    public async Task A_status_wait_that_runs_out_throws_the_typed_timeout()
    {
        var (client, handler, time) = Client((_, _) => Answer(HttpStatusCode.OK, """{"sandbox_id":"sbx_1","status":"pending"}"""));
        using var _ = client;

        var ex = await Assert.ThrowsAsync<TensorlakeTimeoutException>(() => FakeClock.RunAsync(time,
            () => client.WaitForStatusAsync("sbx_1", [SandboxStatus.Running], TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(1)), Step));

        Assert.Contains("did not reach running within 5 s (last: pending)", ex.Message, StringComparison.Ordinal);
        Assert.InRange(handler.Requests.Count, 2, 6);
    }

    [Fact]
    public async Task A_status_wait_on_a_terminated_sandbox_throws_the_typed_terminal_state()
    {
        var (client, _, time) = Client((_, _) => Answer(HttpStatusCode.OK, """{"sandbox_id":"sbx_1","status":"terminated","termination_reason":"oom"}"""));
        using var __ = client;

        var ex = await Assert.ThrowsAsync<SandboxTerminatedException>(() => FakeClock.RunAsync(time,
            () => client.WaitForStatusAsync("sbx_1", [SandboxStatus.Running], TimeSpan.FromSeconds(5)), Step));

        Assert.Equal("sbx_1", ex.Sandbox);
        Assert.Contains("oom", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_snapshot_wait_that_runs_out_throws_the_typed_timeout()
    {
        var (client, _, time) = Client((_, _) => Answer(HttpStatusCode.OK, """{"snapshot_id":"snap_1","status":"in_progress"}"""));
        using var __ = client;

        await Assert.ThrowsAsync<TensorlakeTimeoutException>(() => FakeClock.RunAsync(time,
            () => client.WaitForSnapshotAsync("snap_1", TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(1)), Step));
    }
}
