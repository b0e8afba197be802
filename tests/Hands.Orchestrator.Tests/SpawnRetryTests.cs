using System.Collections.Concurrent;
using System.Net;
using Hands.Orchestrator;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// Retries happen at one layer: a work item claimed from a real control plane, spawned against a sandbox provider that
/// answers every request with 503, costs the provider exactly the client's own tries, not the client's tries times
/// the orchestrator's. The provider's clock is fake, so the backoff never sleeps. A provider at capacity (429) is not
/// a failed attempt: the item is released every time, and the orchestrator pauses its claims.
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

    /// <summary>A provider that has no sandbox of that name and refuses every create: the engine at --max-sandboxes.</summary>
    private sealed class AtCapacity : HttpMessageHandler
    {
        private int _creates;

        public int Creates => Volatile.Read(ref _creates);

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Method == HttpMethod.Get)
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound) { Content = new StringContent("""{"error":"no such sandbox"}""") });
            }

            Interlocked.Increment(ref _creates);
            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.TooManyRequests)
            {
                Content = new StringContent("""{"error":"the engine is at capacity (1 live sandboxes)"}"""),
            });
        }
    }

    [Fact]
    public async Task A_provider_at_capacity_is_not_a_failed_attempt_the_item_is_released_every_time()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key, worker, polled) = await cp.PolledItemAsync();
        var item = await worker.Work.AckAsync(env.Id, polled.Id);
        item.Secret ??= polled.Secret;
        var handler = new AtCapacity();
        using var provider = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("https://api.tensorlake.test"), Handler = handler, MaxRetries = 0 });
        var options = new OrchestratorOptions { EnvironmentId = env.Id, EnvironmentKey = key, BaseUrl = cp.BaseAddress };
        var spawner = new SessionSpawner(worker, provider, options);

        for (var attempt = 1; attempt <= options.MaxSpawnAttempts + 1; attempt++)
        {
            var outcome = await spawner.SpawnAsync(item, CancellationToken.None);
            Assert.True(outcome is { Succeeded: false, ProviderAtCapacity: true }, $"attempt {attempt}: {outcome}");
            Assert.Contains("at capacity", outcome.Detail, StringComparison.Ordinal);
        }

        // The try past MaxSpawnAttempts released the item too: queued again within its 1 s release, not after the 60 s lease.
        Assert.Equal(options.MaxSpawnAttempts + 1, handler.Creates);
        await Eventually.TrueAsync(async () => (await worker.Work.ListAsync(env.Id)).Data.Single().State == WorkState.Queued,
            "the item to be queued again", TimeSpan.FromSeconds(20));
    }

    [Fact]
    public async Task A_provider_at_capacity_pauses_the_orchestrators_claims_on_its_clock()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        await cp.CreateSessionAsync(env.Id, agent.Id);
        await cp.CreateSessionAsync(env.Id, agent.Id);
        var handler = new AtCapacity();
        using var provider = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("https://api.tensorlake.test"), Handler = handler, MaxRetries = 0 });
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var outcomes = new ConcurrentQueue<SpawnOutcome>();
        await using var orchestrator = new WorkQueueOrchestrator(cp.Worker(key), provider, new OrchestratorOptions
        {
            EnvironmentId = env.Id,
            EnvironmentKey = key,
            BaseUrl = cp.BaseAddress,
            MaxConcurrentSpawns = 1,
            TimeProvider = time,
        });
        orchestrator.Spawned += outcomes.Enqueue;
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(100, stop.Token);

        await Eventually.TrueAsync(() => outcomes.Count == 1, "the first spawn");
        Assert.True(outcomes.Single().ProviderAtCapacity);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromMilliseconds(500), orchestrator.PausedUntil);
        // Paused on the orchestrator's clock, which has not moved: nothing else is claimed or created.
        Assert.Equal(1, handler.Creates);

        time.Advance(TimeSpan.FromMilliseconds(500));
        await Eventually.TrueAsync(() => outcomes.Count == 2, "a claim once the pause is over");
        Assert.Equal(2, handler.Creates);
        Assert.Equal(time.GetUtcNow() + TimeSpan.FromSeconds(1), orchestrator.PausedUntil); // doubled: the provider was still full

        await stop.CancelAsync();
        await polling;
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
