using System.Collections.Concurrent;
using System.Text.Json;
using Hands.Protocol.Models;
using Hands.Webhooks;
using Hands.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>Webhook deliveries: Standard Webhooks signed, retried with the same id, 3xx disables the endpoint.</summary>
public sealed class WebhookDeliveryTests
{
    private sealed record Received(string Id, string Type, string SessionId, bool Verified, int Status);

    /// <summary>A loopback receiver that verifies each delivery over its raw bytes and answers <paramref name="status"/> per type.</summary>
    private static async Task<(LoopbackStub Stub, Uri Url)> ReceiverAsync(Func<string, int> status, ConcurrentQueue<Received> log, Func<string> secret)
    {
        var stub = await LoopbackStub.StartAsync(async c =>
        {
            using var buffer = new MemoryStream();
            await c.Request.Body.CopyToAsync(buffer);
            var raw = buffer.ToArray();
            var verified = new WebhookVerifier(secret()).TryVerify(raw, c.Request.Headers, out _);
            var data = JsonDocument.Parse(raw).RootElement.GetProperty("data");
            var code = status(data.GetProperty("type").GetString()!);
            log.Enqueue(new Received(c.Request.Headers["webhook-id"].ToString(), data.GetProperty("type").GetString()!, data.GetProperty("id").GetString()!, verified, code));
            c.Response.StatusCode = code;
        });
        return (stub, new Uri(stub.BaseAddress, "/hook"));
    }

    private static Task WaitForAsync(Func<bool> condition, int seconds = 20) =>
        Eventually.TrueAsync(condition, "the condition", TimeSpan.FromSeconds(seconds));

    [Fact]
    public async Task Session_lifecycle_events_are_delivered_signed_to_subscribed_endpoints()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var log = new ConcurrentQueue<Received>();
        string secret = "";
        var (receiver, url) = await ReceiverAsync(_ => 200, log, () => secret);
        await using var _ = receiver;
        var endpoint = await cp.App.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest
        {
            Url = url.ToString(),
            EventTypes = ["session.status_run_started", "session.status_idled", "session.status_terminated"],
        });
        secret = endpoint.Secret!;
        Assert.StartsWith("whsec_", secret, StringComparison.Ordinal);
        Assert.Null((await cp.App.WebhookEndpoints.ListAsync()).Data.Single().Secret); // shown once

        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "hi");
        await cp.App.Sessions.ArchiveAsync(session.Id);
        await WaitForAsync(() => log.Count >= 3);
        Assert.All(log, r => Assert.True(r.Verified));
        Assert.All(log, r => Assert.Equal(session.Id, r.SessionId));
        Assert.Equal(["session.status_idled", "session.status_run_started", "session.status_terminated"], log.Select(r => r.Type).Order());
        await WaitForAsync(() => OutboxEmpty(cp)); // every delivery made: nothing more can arrive
        Assert.Equal(3, log.Count); // session.created was not subscribed
    }

    [Fact]
    public async Task Failed_deliveries_are_retried_with_the_same_id_up_to_three_attempts_and_a_redirect_disables_the_endpoint()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var log = new ConcurrentQueue<Received>();
        string secret = "";
        var (receiver, url) = await ReceiverAsync(type => type == "session.created" ? 500 : 307, log, () => secret);
        await using var _ = receiver;
        var endpoint = await cp.App.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest { Url = url.ToString(), EventTypes = ["session.created"] });
        secret = endpoint.Secret!;
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        await cp.CreateSessionAsync(env.Id, agent.Id);
        await WaitForAsync(() => log.Count >= 3);
        await WaitForAsync(() => OutboxEmpty(cp)); // dropped after the third attempt: nothing more can arrive
        Assert.Equal(3, log.Count);
        Assert.Single(log.Select(r => r.Id).Distinct());

        var redirect = await cp.App.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest { Url = url.ToString(), EventTypes = ["session.status_run_started"] });
        secret = redirect.Secret!;
        await cp.CreateSessionAsync(env.Id, agent.Id, "hi");
        await WaitForAsync(() => log.Any(r => r.Status == 307));
        await WaitForAsync(() => cp.App.WebhookEndpoints.ListAsync().Result.Data.Single(e => e.Id == redirect.Id).DisabledAt is not null);
    }

    [Fact]
    public async Task A_failed_delivery_waits_for_its_retry_on_the_control_planes_clock()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cp = await TestControlPlane.StartAsync(o =>
        {
            o.Time = clock;
            o.WebhookRetryBase = TimeSpan.FromSeconds(30);
        });
        var log = new ConcurrentQueue<Received>();
        string secret = "";
        var answered = 0;
        var (receiver, url) = await ReceiverAsync(_ => Interlocked.Increment(ref answered) == 1 ? 500 : 200, log, () => secret);
        await using var _ = receiver;
        secret = (await cp.App.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest { Url = url.ToString(), EventTypes = ["session.created"] })).Secret!;
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:hello", "[]");
        await cp.CreateSessionAsync(env.Id, agent.Id);
        await WaitForAsync(() => log.Count >= 1);
        Assert.Single(log); // the retry is 22.5-37.5 s away on a clock that has not moved

        clock.Advance(TimeSpan.FromSeconds(40));

        await WaitForAsync(() => log.Count >= 2, seconds: 5);
        Assert.Equal([500, 200], log.Select(r => r.Status));
        Assert.Single(log.Select(r => r.Id).Distinct());
    }

    /// <summary>No delivery is pending or scheduled for a retry.</summary>
    private static bool OutboxEmpty(TestControlPlane cp) => cp.Server.Core.Read(sql => sql.Scalar<long>("SELECT COUNT(*) FROM webhook_outbox")) == 0;
}
