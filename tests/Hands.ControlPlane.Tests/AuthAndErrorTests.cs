using System.Text.Json;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>Authentication exactly as the hosted service, and every bad input answered with a named error envelope.</summary>
public sealed class AuthAndErrorTests
{
    private static void AssertEnvelope(JsonElement body, string type, string? messagePart = null)
    {
        Assert.Equal("error", body.GetProperty("type").GetString());
        Assert.Equal(type, body.GetProperty("error").GetProperty("type").GetString());
        Assert.StartsWith("req_", body.GetProperty("request_id").GetString(), StringComparison.Ordinal);
        if (messagePart is not null)
        {
            Assert.Contains(messagePart, body.GetProperty("error").GetProperty("message").GetString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Missing_wrong_and_doubled_credentials_are_401_and_never_echo_the_key()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, body, response) = await cp.SendRawAsync(HttpMethod.Get, "/v1/sessions", headers: []);
        Assert.Equal(401, status);
        AssertEnvelope(body, "authentication_error");
        Assert.True(response.Headers.Contains("request-id"));

        (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/sessions", headers: new() { ["x-api-key"] = "sk-wrong-SECRETVALUE" });
        Assert.Equal(401, status);
        AssertEnvelope(body, "authentication_error");
        Assert.DoesNotContain("SECRETVALUE", body.GetRawText(), StringComparison.Ordinal);

        (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/sessions",
            headers: new() { ["x-api-key"] = TestControlPlane.ApiKey, ["Authorization"] = "Bearer " + TestControlPlane.ApiKey });
        Assert.Equal(401, status);
        AssertEnvelope(body, "authentication_error", "not both");
    }

    [Theory]
    [InlineData("/V1/skills")]
    [InlineData("/v1/SKILLS")]
    [InlineData("/%76%31/skills")]
    [InlineData("/V1/agents")]
    [InlineData("/v1/Sessions")]
    [InlineData("/V1/environments")]
    [InlineData("/nothing-here")]
    public async Task Every_route_refuses_an_unauthenticated_call_in_any_case_or_encoding(string path)
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, path, headers: []);
        Assert.Equal(401, status);
        AssertEnvelope(body, "authentication_error");
        Assert.Equal(200, (await cp.SendRawAsync(HttpMethod.Get, "/healthz", headers: [])).Status);
    }

    [Fact]
    public async Task The_api_key_works_as_x_api_key_and_as_bearer_like_the_npm_sdk_sends_it()
    {
        await using var cp = await TestControlPlane.StartAsync();
        Assert.Equal(200, (await cp.SendRawAsync(HttpMethod.Get, "/v1/agents")).Status);
        Assert.Equal(200, (await cp.SendRawAsync(HttpMethod.Get, "/v1/agents", headers: new() { ["Authorization"] = "Bearer " + TestControlPlane.ApiKey })).Status);
    }

    [Fact]
    public async Task Environment_keys_are_bearer_only_scoped_to_their_environment_and_revocable()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var (other, _) = await cp.CreateEnvironmentAsync("other");
        var bearer = new Dictionary<string, string> { ["Authorization"] = "Bearer " + key };

        Assert.Equal(200, (await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/stats", headers: new(bearer))).Status);
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{other.Id}/work/stats", headers: new(bearer));
        Assert.Equal(403, status);
        AssertEnvelope(body, "permission_error");
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, "/v1/agents", """{"name":"x","model":"m"}""", headers: new(bearer));
        Assert.Equal(403, status);
        AssertEnvelope(body, "permission_error", "organization API key");
        (status, _, _) = await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/stats", headers: new() { ["x-api-key"] = key });
        Assert.Equal(401, status);

        var keys = await cp.App.Environments.CreateKeyAsync(env.Id);
        Assert.StartsWith("sk-ant-oat01-", keys.Key, StringComparison.Ordinal);
        Assert.Equal(200, (await cp.SendRawAsync(HttpMethod.Delete, $"/v1/environments/{env.Id}/keys/{keys.Id}")).Status);
        Assert.Equal(401, (await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/stats",
            headers: new() { ["Authorization"] = "Bearer " + keys.Key })).Status);
    }

    [Fact]
    public async Task Keys_are_stored_hashed_never_in_clear()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (_, key) = await cp.CreateEnvironmentAsync();
        var raw = await File.ReadAllBytesAsync(Path.Combine(cp.DataDirectory, "control-plane.db"));
        var wal = Path.Combine(cp.DataDirectory, "control-plane.db-wal");
        var text = System.Text.Encoding.ASCII.GetString(raw) + (File.Exists(wal) ? System.Text.Encoding.ASCII.GetString(await File.ReadAllBytesAsync(wal)) : "");
        Assert.DoesNotContain(key, text, StringComparison.Ordinal);
        Assert.DoesNotContain(TestControlPlane.ApiKey, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Beta_and_version_headers_are_required()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/agents",
            headers: new() { ["x-api-key"] = TestControlPlane.ApiKey, ["anthropic-beta"] = "" });
        Assert.Equal(404, status);
        AssertEnvelope(body, "not_found_error", "managed-agents-2026-04-01");
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/agents",
            headers: new() { ["x-api-key"] = TestControlPlane.ApiKey, ["anthropic-version"] = "" });
        Assert.Equal(400, status);
        AssertEnvelope(body, "invalid_request_error", "anthropic-version");
    }

    [Theory]
    [InlineData("/v1/agents", "{not json", "not valid JSON")]
    [InlineData("/v1/agents", "[1,2]", "must be a JSON object")]
    [InlineData("/v1/agents", """{"model":"scripted:demo"}""", "name: Field required")]
    [InlineData("/v1/agents", """{"name":"a","model":"m","colour":"blue"}""", "colour: Extra inputs are not permitted")]
    [InlineData("/v1/agents", """{"name":"a","model":7}""", "model: Input should be a model id string")]
    [InlineData("/v1/agents", """{"name":"a","model":"m","tools":[{"type":"laser"}]}""", "tools[0].type: unknown tool type 'laser'")]
    [InlineData("/v1/agents", """{"name":"a","model":"m","tools":[{"type":"custom","name":"bash","description":"d","input_schema":{"type":"object"}}]}""", "collides with a built-in")]
    [InlineData("/v1/agents", """{"name":"a","model":"m","tools":[{"type":"agent_toolset_20260401","configs":[{"name":"teleport"}]}]}""", "tools[0].configs[0].name: unknown tool 'teleport'")]
    [InlineData("/v1/environments", """{"name":"e","config":{"type":"cloud"}}""", "runs no cloud sandboxes")]
    [InlineData("/v1/environments", """{"name":"e","metadata":{"k":5}}""", "metadata.k: Input should be a valid string")]
    [InlineData("/v1/sessions", """{"environment_id":"env_x"}""", "agent: Field required")]
    [InlineData("/v1/webhook_endpoints", """{"url":"ftp://x"}""", "url: must be an absolute http or https URL")]
    public async Task Malformed_bodies_get_400_naming_the_field(string path, string body, string message)
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, json, _) = await cp.SendRawAsync(HttpMethod.Post, path, body);
        Assert.Equal(400, status);
        AssertEnvelope(json, "invalid_request_error", message);
    }

    [Theory]
    [InlineData("/v1/agents?limit=0", "limit: Input should be between 1 and 1000")]
    [InlineData("/v1/environments?page=nope", "page: invalid page cursor")]
    [InlineData("/v1/sessions?order=sideways", "order: Input should be 'asc' or 'desc', not 'sideways'")]
    [InlineData("/v1/skills?limit=101", "limit: Input should be between 1 and 100")]
    [InlineData("/v1/agents/agent_x?version=0", "version: Input should be between 1 and 2147483647")]
    [InlineData("/v1/environments/env_x/work/poll?block_ms=1000", "block_ms: must be between 1 and 999")]
    [InlineData("/v1/sessions/sesn_x/events?limit=ten", "limit: Input should be a valid integer, not 'ten'")]
    [InlineData("/v1/sessions/sesn_x/events/stream?event_deltas[]=tool_use", "event_deltas: 'tool_use' is not supported")]
    public async Task Malformed_queries_get_400_naming_the_parameter(string path, string message)
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, json, _) = await cp.SendRawAsync(HttpMethod.Get, path);
        Assert.Equal(400, status);
        AssertEnvelope(json, "invalid_request_error", message);
    }

    [Fact]
    public async Task Unknown_ids_and_paths_are_404_envelopes()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/sessions/sesn_nope");
        Assert.Equal(404, status);
        AssertEnvelope(body, "not_found_error", "sesn_nope");
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, "/v1/teleporters");
        Assert.Equal(404, status);
        AssertEnvelope(body, "not_found_error");
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, "/v1/sessions", """{"agent":"agent_nope","environment_id":"env_nope"}""");
        Assert.Equal(404, status);
        AssertEnvelope(body, "not_found_error", "env_nope");
    }

    [Fact]
    public async Task A_body_over_32_MB_is_413_request_too_large_and_nothing_is_written()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var big = "{\"name\":\"" + new string('x', 33 * 1024 * 1024) + "\",\"model\":\"m\"}";
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, "/v1/agents", big);
        Assert.Equal(413, status);
        AssertEnvelope(body, "request_too_large");
        Assert.Empty((await cp.App.Agents.ListAsync()).Data);
    }

    [Fact]
    public async Task Illegal_transitions_are_rejected_and_leave_state_alone()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:permissions");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        var ask = (await cp.App.Events.ListAllAsync(session.Id).ToListAsync()).Single(e => e.Type == "agent.tool_use");
        await cp.App.Events.SendAsync(session.Id, [new() { Type = "user.tool_confirmation", ToolUseId = ask.Id, Result = "allow" }]);
        Assert.Equal("running", (await cp.App.Sessions.GetAsync(session.Id)).Status); // the worker now runs the call
        var (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/sessions/{session.Id}/archive");
        Assert.Equal(409, status);
        AssertEnvelope(body, "conflict_error", "user.interrupt");
        var deleteAttempt = await cp.SendRawAsync(HttpMethod.Delete, $"/v1/sessions/{session.Id}");
        Assert.Equal(409, deleteAttempt.Status);
        Assert.Equal("false", Assert.Single(deleteAttempt.Response.Headers.GetValues("x-should-retry")));
        Assert.Equal("running", (await cp.App.Sessions.GetAsync(session.Id)).Status);

        // an event batch with one bad event writes none of them
        var before = (await cp.App.Events.ListAsync(session.Id, limit: 1000)).Data.Count;
        (status, body, _) = await cp.SendRawAsync(HttpMethod.Post, $"/v1/sessions/{session.Id}/events",
            """{"events":[{"type":"user.message","content":[{"type":"text","text":"ok"}]},{"type":"user.teleport"}]}""");
        Assert.Equal(400, status);
        AssertEnvelope(body, "invalid_request_error", "events[1].type: unknown event type 'user.teleport'");
        Assert.Equal(before, (await cp.App.Events.ListAsync(session.Id, limit: 1000)).Data.Count);

        (status, body, _) = await cp.SendRawAsync(HttpMethod.Get, $"/v1/environments/{env.Id}/work/poll?block_ms=0");
        Assert.Equal(400, status);
        AssertEnvelope(body, "invalid_request_error", "block_ms");
    }
}
