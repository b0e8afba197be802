using System.Collections.Concurrent;
using System.Text.Json;
using Hands.Orchestrator;
using Hands.Sandboxes.Client;
using Hands.Testing;
using Microsoft.AspNetCore.Http;

namespace Hands.Orchestrator.Tests;

/// <summary>
/// <c>HANDS_SANDBOX_POOL</c> against a provider on loopback that answers a claim the ways Tensorlake's service and SDK
/// do: a warm sandbox (claimed, then named for its session), a claim queued on a full pool (<c>pending</c>,
/// <c>pool_at_capacity</c>: given back, and the sandbox created instead), the local engine's 429 (created instead), a
/// name another delivery took meanwhile (the claimed one given back, the session's used), and an unknown pool (the
/// spawn fails naming the variable).
/// </summary>
public sealed class PoolSandboxTests
{
    /// <summary>Sandboxes by id and the names they carry; claims answered from a script; every call recorded.</summary>
    private sealed class Provider
    {
        public ConcurrentDictionary<string, string?> Sandboxes { get; } = new(StringComparer.Ordinal);
        public ConcurrentQueue<(int Status, string Body)> Claims { get; } = new();
        public ConcurrentQueue<string> Calls { get; } = new();
        /// <summary>PATCHing this id finds its name taken by another sandbox, made meanwhile.</summary>
        public string? RacedId { get; set; }
        private int _created;

        public async Task HandleAsync(HttpContext c)
        {
            var path = c.Request.Path.Value!;
            var body = await new StreamReader(c.Request.Body).ReadToEndAsync();
            Calls.Enqueue($"{c.Request.Method} {path}{(body.Length > 0 ? " " + body : "")}");
            var (status, answer) = (c.Request.Method, path.Split('/', StringSplitOptions.RemoveEmptyEntries)) switch
            {
                ("POST", ["sandbox-pools", "pool-1", "sandboxes"]) => Claims.TryDequeue(out var claim) ? claim : (500, "no claim scripted"),
                ("POST", ["sandbox-pools", _, "sandboxes"]) => (404, "Sandbox pool not found"),
                ("GET", ["sandboxes", var idOrName]) => Find(idOrName) is { } id ? (200, Info(id)) : (404, "Sandbox not found"),
                ("PATCH", ["sandboxes", var id]) => Rename(id, JsonDocument.Parse(body).RootElement.GetProperty("name").GetString()!),
                ("DELETE", ["sandboxes", var id]) => Sandboxes.TryRemove(id, out _) ? (200, "") : (404, "Sandbox not found"),
                ("POST", ["sandboxes"]) => Create(JsonDocument.Parse(body).RootElement.GetProperty("name").GetString()!),
                _ => (404, "not found"),
            };
            c.Response.StatusCode = status;
            c.Response.ContentType = answer.StartsWith('{') ? "application/json" : "text/plain";
            await c.Response.WriteAsync(answer);
        }

        private string? Find(string idOrName) => Sandboxes.ContainsKey(idOrName) ? idOrName : Sandboxes.FirstOrDefault(s => s.Value == idOrName).Key;

        private string Info(string id) =>
            $$"""{"id":"{{id}}","status":"running","name":{{(Sandboxes[id] is { } n ? $"\"{n}\"" : "null")}},"sandbox_url":"http://127.0.0.1:1"}""";

        private (int, string) Rename(string id, string name)
        {
            if (id == RacedId)
            {
                Sandboxes["sbx-made-meanwhile"] = name;
                return (409, $"a sandbox named '{name}' already exists");
            }

            Sandboxes[id] = name;
            return (200, Info(id));
        }

        private (int, string) Create(string name)
        {
            var id = $"sbx-created-{Interlocked.Increment(ref _created)}";
            Sandboxes[id] = name;
            return (200, $$"""{"sandbox_id":"{{id}}","status":"running","name":"{{name}}"}""");
        }
    }

    private static (SessionSandboxes, TensorlakeClient) Sessions(LoopbackStub stub, string pool)
    {
        var client = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = new Uri("https://api.tensorlake.ai"), LifecycleUrl = stub.BaseAddress, ApiKey = "tl_apiKey_test", MaxRetries = 0 });
        return (new SessionSandboxes(client, new OrchestratorOptions { EnvironmentId = "env_1", EnvironmentKey = "unused-here", SandboxPool = pool }), client);
    }

    [Fact]
    public async Task A_session_draws_a_warm_sandbox_names_it_and_falls_back_to_a_create_when_the_pool_is_full()
    {
        var provider = new Provider();
        provider.Sandboxes["sbx-warm"] = null;
        provider.Sandboxes["sbx-queued"] = null;
        provider.Claims.Enqueue((200, """{"sandbox_id":"sbx-warm","status":"running","claim_configuration_applied":true}"""));
        provider.Claims.Enqueue((200, """{"sandbox_id":"sbx-queued","status":"pending","pending_reason":"pool_at_capacity"}"""));
        provider.Claims.Enqueue((429, "pool pool-1 is at capacity: 2 of its max_containers 2 sandboxes are alive"));
        await using var stub = await LoopbackStub.StartAsync(provider.HandleAsync);
        var (sessions, client) = Sessions(stub, "pool-1");
        using var _ = client;

        var (claimed, how) = await sessions.AcquireAsync("sesn_a", CancellationToken.None);
        Assert.Equal((SandboxAcquisition.Claimed, "sbx-warm", "agent-sesn-a"), (how, claimed.CanonicalId, claimed.Name));
        Assert.Equal(["GET /sandboxes/agent-sesn-a", "POST /sandbox-pools/pool-1/sandboxes", """PATCH /sandboxes/sbx-warm {"name":"agent-sesn-a"}""", "GET /sandboxes/agent-sesn-a"],
            Drain(provider.Calls));

        // Reused by name: the pool is not asked again.
        Assert.Equal(SandboxAcquisition.Reused, (await sessions.AcquireAsync("sesn_a", CancellationToken.None)).How);
        Assert.Equal(["GET /sandboxes/agent-sesn-a"], Drain(provider.Calls));

        // The service queued the claim on a full pool: it is given back, and the session's sandbox created.
        var (queuedSession, howQueued) = await sessions.AcquireAsync("sesn_b", CancellationToken.None);
        Assert.Equal((SandboxAcquisition.Created, "sbx-created-1"), (howQueued, queuedSession.CanonicalId));
        var calls = Drain(provider.Calls);
        Assert.Equal(["GET /sandboxes/agent-sesn-b", "POST /sandbox-pools/pool-1/sandboxes", "DELETE /sandboxes/sbx-queued"], calls.Take(3));
        Assert.StartsWith("POST /sandboxes {", calls[3], StringComparison.Ordinal);
        Assert.False(provider.Sandboxes.ContainsKey("sbx-queued"));

        // The engine's 429: created instead.
        var (fullSession, howFull) = await sessions.AcquireAsync("sesn_c", CancellationToken.None);
        Assert.Equal((SandboxAcquisition.Created, "agent-sesn-c"), (howFull, fullSession.Name));
    }

    [Fact]
    public async Task A_claim_whose_name_was_taken_meanwhile_is_given_back_and_an_unknown_pool_fails_the_spawn()
    {
        var provider = new Provider { RacedId = "sbx-raced" };
        provider.Sandboxes["sbx-raced"] = null;
        provider.Claims.Enqueue((200, """{"sandbox_id":"sbx-raced","status":"running"}"""));
        await using var stub = await LoopbackStub.StartAsync(provider.HandleAsync);
        var (sessions, client) = Sessions(stub, "pool-1");
        using var _ = client;

        var (sandbox, how) = await sessions.AcquireAsync("sesn_d", CancellationToken.None);
        Assert.Equal(("sbx-made-meanwhile", "agent-sesn-d"), (sandbox.CanonicalId, sandbox.Name));
        Assert.Equal(SandboxAcquisition.Reused, how);
        Assert.False(provider.Sandboxes.ContainsKey("sbx-raced"), "the claimed sandbox that could not be named was given back");

        var (unknown, unknownClient) = Sessions(stub, "pool-nope");
        using var __ = unknownClient;
        var refused = await Assert.ThrowsAsync<OrchestratorException>(() => unknown.AcquireAsync("sesn_e", CancellationToken.None));
        Assert.Contains("HANDS_SANDBOX_POOL=pool-nope", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(provider.Calls, c => c.StartsWith("POST /sandboxes", StringComparison.Ordinal) && c.Contains("agent-sesn-e", StringComparison.Ordinal));
    }

    private static List<string> Drain(ConcurrentQueue<string> queue)
    {
        var list = new List<string>();
        while (queue.TryDequeue(out var item))
        {
            list.Add(item);
        }

        return list;
    }
}
