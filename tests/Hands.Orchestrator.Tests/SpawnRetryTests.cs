using System.Collections.Concurrent;
using System.Net;
using Hands.Orchestrator;
using Hands.Sandboxes.Client;
using Hands.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// Retries happen at one layer: a work item claimed from a real control plane, spawned against a sandbox provider that
/// answers every request with 503, costs the provider exactly the client's own tries, not the client's tries times
/// the orchestrator's. The provider's clock is fake, so the backoff never sleeps.
/// </summary>
public sealed class SpawnRetryTests
{
    private sealed class Unavailable : HttpMessageHandler
    {
        public ConcurrentQueue<string> Requests { get; } = new();

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Requests.Enqueue($"{request.Method} {request.RequestUri!.AbsolutePath}");
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { Content = new StringContent("busy") });
        }
    }

    [Fact]
    public async Task A_spawn_whose_provider_keeps_answering_503_sends_MaxRetries_plus_one_requests()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key, worker, polled) = await cp.PolledItemAsync();
        var item = await worker.Work.AckAsync(env.Id, polled.Id);
        item.Secret ??= polled.Secret;
        var handler = new Unavailable();
        var time = new FakeTimeProvider();
        using var provider = new TensorlakeClient(new TensorlakeClientOptions
        {
            ApiUrl = new Uri("https://api.tensorlake.test"),
            Handler = handler,
            MaxRetries = 5,
            TimeProvider = time,
        });
        var spawner = new SessionSpawner(worker, provider, new OrchestratorOptions
        {
            EnvironmentId = env.Id,
            EnvironmentKey = key,
            BaseUrl = cp.BaseAddress,
        });

        var spawn = spawner.SpawnAsync(item, CancellationToken.None);
        for (var turns = 0; !spawn.IsCompleted; turns++)
        {
            Assert.True(turns < 1_000_000, "the spawn did not finish");
            time.Advance(TimeSpan.FromMilliseconds(250));
            await Task.Yield();
        }

        var outcome = await spawn;
        Assert.False(outcome.Succeeded);
        Assert.Contains("503", outcome.Detail, StringComparison.Ordinal);
        Assert.Equal(6, handler.Requests.Count);
        Assert.All(handler.Requests, r => Assert.Equal($"GET /sandboxes/{SandboxNames.ForSession(item.Data.Id)}", r));
    }
}
