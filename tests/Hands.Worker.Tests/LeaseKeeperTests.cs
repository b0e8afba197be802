using Hands.Protocol.Client;
using Hands.Protocol;
using Hands.Testing;
using Hands.Worker.Hosting;
using Hands.Worker.Runner;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// A failed heartbeat is retried within a second, not a whole interval later: an outage of a few seconds that spans
/// one beat (an engine restart carrying the worker's traffic, a network blip) must not run the lease out. The worker's
/// clock is a fake the test moves; the heartbeats go to a real control plane through a handler that drops one.
/// </summary>
public sealed class LeaseKeeperTests
{
    [Fact]
    public async Task A_failed_heartbeat_is_retried_long_before_the_next_interval()
    {
        await using var cp = await TestControlPlane.StartAsync(o => o.LeaseTtl = TimeSpan.FromSeconds(10));
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        await cp.CreateSessionAsync(env.Id, agent.Id);
        var item = await cp.Worker(key).Work.PollAsync(env.Id, 500) ?? throw new InvalidOperationException("nothing queued");
        await cp.Worker(key).Work.AckAsync(env.Id, item.Id);

        var heartbeats = new DroppingHandler(dropCall: 2);
        using var http = new HttpClient(heartbeats);
        using var client = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!),
            new ManagedAgentsClientOptions { BaseUrl = cp.Server.BaseAddress, MaxRetries = 0, HttpClient = http });
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var keeper = new LeaseKeeper(client, env.Id, item.Id, new WorkerLog(), clock);
        using var stop = new CancellationTokenSource();
        var running = keeper.RunAsync(stop.Token);

        Assert.True(await keeper.FirstBeat.WaitAsync(TimeSpan.FromSeconds(30)));
        // The TTL is 10 s, so beats are 5 s apart: the second is the one dropped.
        await MoveClockUntilAsync(clock, heartbeats, calls: 2, budget: TimeSpan.FromSeconds(6));
        // Retried within a second of fake time; waiting the interval out would take 5.
        await MoveClockUntilAsync(clock, heartbeats, calls: 3, budget: TimeSpan.FromSeconds(2));
        Assert.False(keeper.Ended.IsCancellationRequested);
        Assert.False(keeper.Lost);

        await stop.CancelAsync();
        await running;
    }

    /// <summary>Moves the fake clock in small steps until the handler has seen <paramref name="calls"/> heartbeats; fails past the budget.</summary>
    private static async Task MoveClockUntilAsync(FakeTimeProvider clock, DroppingHandler heartbeats, int calls, TimeSpan budget)
    {
        var step = TimeSpan.FromMilliseconds(100);
        for (var moved = TimeSpan.Zero; moved <= budget; moved += step)
        {
            if (await heartbeats.WaitForAsync(calls, TimeSpan.FromMilliseconds(50)))
            {
                return;
            }

            clock.Advance(step);
        }

        Assert.Fail($"heartbeat {calls} did not come within {budget.TotalSeconds:0.#} s of the worker's clock");
    }

    /// <summary>Passes requests to the control plane, counts heartbeats, and fails one of them as a refused connection would.</summary>
    private sealed class DroppingHandler(int dropCall) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _calls;
        private readonly SemaphoreSlim _seen = new(0);

        public async Task<bool> WaitForAsync(int calls, TimeSpan wait)
        {
            while (Volatile.Read(ref _calls) < calls)
            {
                if (!await _seen.WaitAsync(wait))
                {
                    return Volatile.Read(ref _calls) >= calls;
                }
            }

            return true;
        }

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (!request.RequestUri!.AbsolutePath.EndsWith("/heartbeat", StringComparison.Ordinal))
            {
                return await base.SendAsync(request, cancellationToken);
            }

            var call = Interlocked.Increment(ref _calls);
            try
            {
                return call == dropCall
                    ? throw new HttpRequestException("connection refused (dropped by the test)")
                    : await base.SendAsync(request, cancellationToken);
            }
            finally
            {
                _seen.Release();
            }
        }
    }
}
