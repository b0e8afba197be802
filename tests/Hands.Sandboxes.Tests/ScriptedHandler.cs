using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Sandboxes.Tests;

/// <summary>Answers every request with the script's reply and records what was sent (URL and <c>traceparent</c>).</summary>
internal sealed class ScriptedHandler(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> reply) : HttpMessageHandler
{
    public ConcurrentQueue<(string Url, string? TraceParent)> Requests { get; } = new();

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Requests.Enqueue((request.RequestUri!.ToString(),
            request.Headers.TryGetValues("traceparent", out var values) ? values.Single() : null));
        return reply(request, cancellationToken);
    }
}

/// <summary>Runs a call to completion on a fake clock: time moves only while the call waits, and never for real.</summary>
internal static class FakeClock
{
    public static async Task<T> RunAsync<T>(FakeTimeProvider time, Func<Task<T>> call, TimeSpan step)
    {
        var task = call();
        for (var turns = 0; !task.IsCompleted; turns++)
        {
            Assert.True(turns < 100_000, "the call did not finish on the fake clock");
            time.Advance(step);
            await Task.Yield();
        }

        return await task;
    }
}
