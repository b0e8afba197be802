using Hands.Protocol.Client;
using Hands.Protocol;
using Hands.Protocol.Models;
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
        var (env, _, worker, item) = await cp.PolledItemAsync();
        await worker.Work.AckAsync(env.Id, item.Id);

        var heartbeats = new DroppingHandler(dropCall: 2);
        using var http = new HttpClient(heartbeats);
        using var client = SessionClient(cp, item, http);
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

    /// <summary>
    /// An outage that begins just before a beat (the worst moment: the lease then has half its TTL left) and ends 1 s
    /// before the lease would run out is survived: the tries come at most a tenth of the TTL apart, so one lands after
    /// the outage and before the end. With retries doubling up to the interval (0.5, 1, 2, then 5 s), the last try
    /// inside the lease came 3.5 s after the failed beat and this outage cost the lease.
    /// </summary>
    [Fact]
    public async Task A_heartbeat_outage_ending_just_before_the_lease_does_keeps_it()
    {
        await using var cp = await TestControlPlane.StartAsync(o => o.LeaseTtl = TimeSpan.FromSeconds(10));
        var (env, _, worker, item) = await cp.PolledItemAsync();
        await worker.Work.AckAsync(env.Id, item.Id);

        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var start = clock.GetUtcNow();
        // Beats 5 s apart; the second is due at 5 s, the lease (from the first) ends at 10 s.
        var heartbeats = new DroppingHandler(dropWhen: () => clock.GetUtcNow() - start is var t && t >= TimeSpan.FromSeconds(4.9) && t < TimeSpan.FromSeconds(9),
            now: clock.GetUtcNow);
        using var http = new HttpClient(heartbeats);
        using var client = SessionClient(cp, item, http);
        var keeper = new LeaseKeeper(client, env.Id, item.Id, new WorkerLog(), clock);
        using var stop = new CancellationTokenSource();
        var running = keeper.RunAsync(stop.Token);

        Assert.True(await keeper.FirstBeat.WaitAsync(TimeSpan.FromSeconds(30)));
        var step = TimeSpan.FromMilliseconds(100);
        for (var moved = TimeSpan.Zero; moved < TimeSpan.FromSeconds(12) && !keeper.Ended.IsCancellationRequested; moved += step)
        {
            await heartbeats.WaitForAsync(heartbeats.Calls + 1, TimeSpan.FromMilliseconds(30));
            clock.Advance(step);
        }

        Assert.True(heartbeats.Dropped >= 3, $"the outage should have failed several tries, failed {heartbeats.Dropped}");
        Assert.False(keeper.Ended.IsCancellationRequested, "the lease was given up during an outage shorter than what was left of it");
        Assert.False(keeper.Lost);
        // The control plane keeps real time, so it would still take a beat the worker's fake clock puts after the
        // lease's end: what counts is a beat on that clock inside the lease.
        Assert.Contains(heartbeats.Succeeded, t => t - start >= TimeSpan.FromSeconds(9) && t - start < TimeSpan.FromSeconds(10));

        await stop.CancelAsync();
        await running;
    }

    [Theory]
    [InlineData(10, 5, new[] { 500, 1000, 1000, 1000 })]
    [InlineData(60, 30, new[] { 500, 1000, 2000, 4000, 6000, 6000 })]
    [InlineData(600, 30, new[] { 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000 })]
    public void Retries_come_at_most_a_tenth_of_the_ttl_apart(int ttlSeconds, int intervalSeconds, int[] expectedMs)
    {
        var delays = Enumerable.Range(1, expectedMs.Length)
            .Select(f => (int)LeaseKeeper.RetryDelay(f, TimeSpan.FromSeconds(intervalSeconds), TimeSpan.FromSeconds(ttlSeconds)).TotalMilliseconds);
        Assert.Equal(expectedMs, delays);
    }

    [Theory]
    [InlineData(8, 4, 4000)]
    [InlineData(60, 30, 6000)]
    [InlineData(20, 10, 5000)]
    public void A_beat_waits_for_its_answer_one_retry_step_at_least_five_seconds_at_most_the_interval(int ttlSeconds, int intervalSeconds, int expectedMs) =>
        Assert.Equal(expectedMs, (int)LeaseKeeper.AttemptTimeout(TimeSpan.FromSeconds(intervalSeconds), TimeSpan.FromSeconds(ttlSeconds)).TotalMilliseconds);

    /// <summary>The item's worker as the real one talks: its sessions token, no client retries (the keeper's schedule is under test).</summary>
    private static ManagedAgentsClient SessionClient(TestControlPlane cp, WorkItem item, HttpClient http) =>
        new(ManagedAgentsCredential.Bearer(WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!),
            new ManagedAgentsClientOptions { BaseUrl = cp.Server.BaseAddress, MaxRetries = 0, HttpClient = http });

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
    private sealed class DroppingHandler(Func<bool> dropWhen, Func<DateTimeOffset>? now = null) : DelegatingHandler(new SocketsHttpHandler())
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<DateTimeOffset> _succeeded = new();

        /// <summary>When (on the test's clock) each heartbeat that went through was sent.</summary>
        public IReadOnlyCollection<DateTimeOffset> Succeeded => [.. _succeeded];

        private int _calls;
        private int _dropped;

        public DroppingHandler(int dropCall) : this(dropWhen: () => false) => _dropCall = dropCall;

        private readonly int _dropCall;

        public int Calls => Volatile.Read(ref _calls);

        public int Dropped => Volatile.Read(ref _dropped);
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
                if (call == _dropCall || dropWhen())
                {
                    Interlocked.Increment(ref _dropped);
                    throw new HttpRequestException("connection refused (dropped by the test)");
                }

                var sentAt = (now ?? (() => DateTimeOffset.UtcNow))();
                var response = await base.SendAsync(request, cancellationToken);
                if (response.IsSuccessStatusCode)
                {
                    _succeeded.Enqueue(sentAt);
                }

                return response;
            }
            finally
            {
                _seen.Release();
            }
        }
    }
}
