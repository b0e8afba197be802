using Hands.ControlPlane.Agents;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Environments;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.MemoryStores;
using Hands.ControlPlane.Sessions;
using Hands.ControlPlane.Skills;
using Hands.ControlPlane.Webhooks;
using Hands.ControlPlane.Work;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Hands.ControlPlane.Endpoints;

/// <summary>The HTTP surface: the hosted service's paths, plus the local extensions (keys, webhook endpoints, skill upload).</summary>
public static class ControlPlaneEndpoints
{
    private static readonly ProtocolJsonContext J = ProtocolJsonContext.Default;

    // Every handler takes a second parameter: a lambda of HttpContext alone binds to RequestDelegate, which would
    // silently discard the IResult it returns.
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => Results.Text("{\"status\":\"ok\"}", "application/json"));

        var env = app.ServiceProvider.GetRequiredService<EnvironmentService>();
        var agents = app.ServiceProvider.GetRequiredService<AgentService>();
        var sessions = app.ServiceProvider.GetRequiredService<SessionService>();
        var streamer = app.ServiceProvider.GetRequiredService<EventStreamer>();
        var work = app.ServiceProvider.GetRequiredService<WorkService>();
        var skills = app.ServiceProvider.GetRequiredService<SkillService>();
        var hooks = app.ServiceProvider.GetRequiredService<WebhookEndpointService>();
        var memory = app.ServiceProvider.GetRequiredService<MemoryStoreService>();

        // environments
        app.MapPost("/v1/environments", async (HttpContext c, CancellationToken _) =>
            Results.Json(await env.CreateAsync(Caller.Of(c), await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.AgentEnvironment));
        app.MapGet("/v1/environments", (HttpContext c, CancellationToken _) => Results.Json(env.List(Caller.Of(c), ArchivableListQuery.From(c.Request.Query)), J.PageAgentEnvironment));
        app.MapGet("/v1/environments/{id}", (HttpContext c, string id) => Results.Json(env.Get(Caller.Of(c), id), J.AgentEnvironment));
        app.MapPost("/v1/environments/{id}", async (HttpContext c, string id) =>
            Results.Json(await env.UpdateAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.AgentEnvironment));
        app.MapDelete("/v1/environments/{id}", async (HttpContext c, string id) =>
            Results.Json(await env.DeleteAsync(Caller.Of(c), id, c.RequestAborted), J.DeletedResource));
        app.MapPost("/v1/environments/{id}/archive", async (HttpContext c, string id) =>
            Results.Json(await env.ArchiveAsync(Caller.Of(c), id, c.RequestAborted), J.AgentEnvironment));
        app.MapPost("/v1/environments/{id}/keys", async (HttpContext c, string id) =>
            Results.Json(await env.CreateKeyAsync(Caller.Of(c), id, c.RequestAborted), J.EnvironmentKey));
        app.MapDelete("/v1/environments/{id}/keys/{keyId}", async (HttpContext c, string id, string keyId) =>
            Results.Json(await env.RevokeKeyAsync(Caller.Of(c), id, keyId, c.RequestAborted), J.DeletedResource));

        // work queue
        app.MapGet("/v1/environments/{id}/work/poll", async (HttpContext c, string id) =>
        {
            var item = await work.PollAsync(Caller.Of(c), id, WorkPollQuery.From(c.Request), c.RequestAborted);
            return item is null ? Results.Text("null", "application/json") : Results.Json(item, J.WorkItem);
        });
        app.MapGet("/v1/environments/{id}/work/stats", (HttpContext c, string id) => Results.Json(work.Stats(Caller.Of(c), id), J.WorkQueueStats));
        app.MapGet("/v1/environments/{id}/work", (HttpContext c, string id) => Results.Json(work.List(Caller.Of(c), id, PageQuery.From(c.Request.Query, 20, 1000)), J.PageWorkItem));
        app.MapGet("/v1/environments/{id}/work/{workId}", (HttpContext c, string id, string workId) =>
            Results.Json(work.Get(Caller.Of(c), id, workId), J.WorkItem));
        app.MapPost("/v1/environments/{id}/work/{workId}", async (HttpContext c, string id, string workId) =>
            Results.Json(await work.UpdateAsync(Caller.Of(c), id, workId, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.WorkItem));
        app.MapPost("/v1/environments/{id}/work/{workId}/ack", async (HttpContext c, string id, string workId) =>
            Results.Json(await work.AckAsync(Caller.Of(c), id, workId, c.RequestAborted), J.WorkItem));
        app.MapPost("/v1/environments/{id}/work/{workId}/heartbeat", async (HttpContext c, string id, string workId) =>
            Results.Json(await work.HeartbeatAsync(Caller.Of(c), id, workId, HeartbeatQuery.From(c.Request.Query), c.RequestAborted), J.WorkHeartbeat));
        app.MapPost("/v1/environments/{id}/work/{workId}/stop", async (HttpContext c, string id, string workId) =>
        {
            await work.StopAsync(Caller.Of(c), id, workId, await JsonBody.ReadAsync(c.Request, allowEmpty: true), c.RequestAborted);
            return Results.NoContent(); // the hosted service answers 204 with no body
        });

        // agents
        app.MapPost("/v1/agents", async (HttpContext c, CancellationToken _) =>
            Results.Json(await agents.CreateAsync(Caller.Of(c), await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.Agent));
        app.MapGet("/v1/agents", (HttpContext c, CancellationToken _) => Results.Json(agents.List(Caller.Of(c), ArchivableListQuery.From(c.Request.Query)), J.PageAgent));
        app.MapGet("/v1/agents/{id}", (HttpContext c, string id) => Results.Json(agents.Get(Caller.Of(c), id, AgentVersion(c.Request.Query)), J.Agent));
        app.MapPost("/v1/agents/{id}", async (HttpContext c, string id) =>
            Results.Json(await agents.UpdateAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.Agent));
        app.MapPost("/v1/agents/{id}/archive", async (HttpContext c, string id) =>
            Results.Json(await agents.ArchiveAsync(Caller.Of(c), id, c.RequestAborted), J.Agent));

        // sessions and events
        app.MapPost("/v1/sessions", async (HttpContext c, CancellationToken _) =>
            Results.Json(await sessions.CreateAsync(Caller.Of(c), await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.Session));
        app.MapGet("/v1/sessions", (HttpContext c, CancellationToken _) => Results.Json(sessions.List(Caller.Of(c), SessionListQuery.From(c.Request.Query)), J.PageSession));
        app.MapGet("/v1/sessions/{id}", (HttpContext c, string id) => Results.Json(sessions.Get(Caller.Of(c), id), J.Session));
        app.MapPost("/v1/sessions/{id}", async (HttpContext c, string id) =>
            Results.Json(await sessions.UpdateAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.Session));
        app.MapDelete("/v1/sessions/{id}", async (HttpContext c, string id) =>
            Results.Json(await sessions.DeleteAsync(Caller.Of(c), id, c.RequestAborted), J.DeletedResource));
        app.MapPost("/v1/sessions/{id}/archive", async (HttpContext c, string id) =>
            Results.Json(await sessions.ArchiveAsync(Caller.Of(c), id, c.RequestAborted), J.Session));
        app.MapGet("/v1/sessions/{id}/resources", (HttpContext c, string id) =>
            Results.Json(sessions.ListResources(Caller.Of(c), id, PageQuery.From(c.Request.Query, 20, 100)), J.PageJsonElement));
        app.MapPost("/v1/sessions/{id}/resources", (HttpContext c, string id) => Results.Json(sessions.AddResource(Caller.Of(c), id), J.JsonElement));
        app.MapGet("/v1/sessions/{id}/resources/{resourceId}", (HttpContext c, string id, string resourceId) =>
            Results.Json(sessions.ResourceById(Caller.Of(c), id, resourceId), J.JsonElement));
        app.MapPost("/v1/sessions/{id}/resources/{resourceId}", (HttpContext c, string id, string resourceId) =>
            Results.Json(sessions.ResourceById(Caller.Of(c), id, resourceId), J.JsonElement));
        app.MapDelete("/v1/sessions/{id}/resources/{resourceId}", (HttpContext c, string id, string resourceId) =>
            Results.Json(sessions.ResourceById(Caller.Of(c), id, resourceId), J.JsonElement));
        app.MapPost("/v1/sessions/{id}/events", async (HttpContext c, string id) =>
            Results.Json(await sessions.SendAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.SessionEventList));
        app.MapGet("/v1/sessions/{id}/events", (HttpContext c, string id) =>
            Results.Json(sessions.ListEvents(Caller.Of(c), id, EventListQuery.From(c.Request.Query)), J.PageSessionEvent));
        app.MapGet("/v1/sessions/{id}/events/stream", (HttpContext c, string id) => streamer.StreamAsync(Caller.Of(c), id, EventStreamQuery.From(c.Request), c.Response, c.RequestAborted));

        // skills
        app.MapPost("/v1/skills", async (HttpContext c, CancellationToken _) => Results.Json(await skills.UploadAsync(Caller.Of(c), null, c.Request, c.RequestAborted), J.SkillVersion));
        // As upstream, the skills API refuses a sessions token: a token-only sandbox gets its skills staged by the orchestrator.
        app.MapGet("/v1/skills", (HttpContext c, CancellationToken _) => Results.Json(skills.List(PageQuery.From(SkillReader(c).Request.Query, 20, 100)), J.PageSkill));
        app.MapGet("/v1/skills/{id}", (HttpContext c, string id) =>
        {
            SkillReader(c);
            return Results.Json(skills.Get(id), J.Skill);
        });
        app.MapPost("/v1/skills/{id}/versions", async (HttpContext c, string id) =>
            Results.Json(await skills.UploadAsync(Caller.Of(c), id, c.Request, c.RequestAborted), J.SkillVersion));
        app.MapGet("/v1/skills/{id}/versions", (HttpContext c, string id) => Results.Json(skills.ListVersions(id, PageQuery.From(SkillReader(c).Request.Query, 20, 1000)), J.PageSkillVersion));
        app.MapGet("/v1/skills/{id}/versions/{version}", (HttpContext c, string id, string version) =>
        {
            SkillReader(c);
            return Results.Json(skills.GetVersion(id, version), J.SkillVersion);
        });
        app.MapGet("/v1/skills/{id}/versions/{version}/content", (HttpContext c, string id, string version) =>
        {
            SkillReader(c);
            var content = skills.GetContent(id, version);
            var type = content.Length > 1 && content[0] == 'P' && content[1] == 'K' ? "application/zip" : "application/octet-stream";
            return Results.Bytes(content, type);
        });

        // memory stores, memories, memory versions
        app.MapPost("/v1/memory_stores", async (HttpContext c, CancellationToken _) =>
            Results.Json(await memory.CreateAsync(Caller.Of(c), await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.MemoryStore));
        app.MapGet("/v1/memory_stores", (HttpContext c, CancellationToken _) => Results.Json(memory.List(Caller.Of(c), ArchivableListQuery.From(c.Request.Query)), J.PageMemoryStore));
        app.MapGet("/v1/memory_stores/{id}", (HttpContext c, string id) => Results.Json(memory.Get(Caller.Of(c), id), J.MemoryStore));
        app.MapPost("/v1/memory_stores/{id}", async (HttpContext c, string id) =>
            Results.Json(await memory.UpdateAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.MemoryStore));
        app.MapDelete("/v1/memory_stores/{id}", async (HttpContext c, string id) =>
            Results.Json(await memory.DeleteAsync(Caller.Of(c), id, c.RequestAborted), J.DeletedResource));
        app.MapPost("/v1/memory_stores/{id}/archive", async (HttpContext c, string id) =>
            Results.Json(await memory.ArchiveAsync(Caller.Of(c), id, c.RequestAborted), J.MemoryStore));
        app.MapGet("/v1/memory_stores/{id}/memories", (HttpContext c, string id) =>
            Results.Json(memory.ListMemories(Caller.Of(c), id, MemoryListQuery.From(c.Request.Query)), J.PageMemory));
        app.MapPost("/v1/memory_stores/{id}/memories", async (HttpContext c, string id) =>
            Results.Json(await memory.CreateMemoryAsync(Caller.Of(c), id, await JsonBody.ReadAsync(c.Request),
                MemoryListQuery.ParseView(c.Request.Query, MemoryValues.ViewBasic), c.RequestAborted), J.Memory));
        app.MapGet("/v1/memory_stores/{id}/memories/{memoryId}", (HttpContext c, string id, string memoryId) =>
            Results.Json(memory.GetMemory(Caller.Of(c), id, memoryId, MemoryListQuery.ParseView(c.Request.Query, MemoryValues.ViewFull)), J.Memory));
        app.MapPost("/v1/memory_stores/{id}/memories/{memoryId}", async (HttpContext c, string id, string memoryId) =>
            Results.Json(await memory.UpdateMemoryAsync(Caller.Of(c), id, memoryId, await JsonBody.ReadAsync(c.Request),
                MemoryListQuery.ParseView(c.Request.Query, MemoryValues.ViewBasic), c.RequestAborted), J.Memory));
        app.MapDelete("/v1/memory_stores/{id}/memories/{memoryId}", async (HttpContext c, string id, string memoryId) =>
            Results.Json(await memory.DeleteMemoryAsync(Caller.Of(c), id, memoryId, c.Request.Query["expected_content_sha256"].ToString(), c.RequestAborted), J.DeletedResource));
        app.MapGet("/v1/memory_stores/{id}/memory_versions", (HttpContext c, string id) =>
            Results.Json(memory.ListVersions(Caller.Of(c), id, PageQuery.From(c.Request.Query, 20, 100), MemoryListQuery.ParseView(c.Request.Query, MemoryValues.ViewBasic),
                NullIfEmpty(c.Request.Query["memory_id"]), NullIfEmpty(c.Request.Query["operation"]), NullIfEmpty(c.Request.Query["session_id"])), J.PageMemoryVersion));
        app.MapGet("/v1/memory_stores/{id}/memory_versions/{versionId}", (HttpContext c, string id, string versionId) =>
            Results.Json(memory.GetVersion(Caller.Of(c), id, versionId, MemoryListQuery.ParseView(c.Request.Query, MemoryValues.ViewFull)), J.MemoryVersion));

        app.MapPost("/v1/memory_stores/{id}/memory_versions/{versionId}/redact", async (HttpContext c, string id, string versionId) =>
            Results.Json(await memory.RedactVersionAsync(Caller.Of(c), id, versionId, c.RequestAborted), J.MemoryVersion));

        // webhook endpoints (local extension)
        app.MapPost("/v1/webhook_endpoints", async (HttpContext c, CancellationToken _) =>
            Results.Json(await hooks.CreateAsync(Caller.Of(c), await JsonBody.ReadAsync(c.Request), c.RequestAborted), J.WebhookEndpoint));
        app.MapGet("/v1/webhook_endpoints", (HttpContext c, CancellationToken _) => Results.Json(hooks.List(Caller.Of(c)), J.PageWebhookEndpoint));
        app.MapDelete("/v1/webhook_endpoints/{id}", async (HttpContext c, string id) =>
            Results.Json(await hooks.DeleteAsync(Caller.Of(c), id, c.RequestAborted), J.DeletedResource));

        app.MapFallback((HttpContext c) =>
            throw ApiException.NotFound($"Not found: {c.Request.Method} {c.Request.Path} is not an endpoint of this API."));
    }

    private static string? NullIfEmpty(Microsoft.Extensions.Primitives.StringValues value) => value.ToString() is { Length: > 0 } s ? s : null;

    /// <summary><c>?version=N</c> (1 or more; empty means 1), or null for the latest version.</summary>
    private static int? AgentVersion(IQueryCollection query) =>
        query.ContainsKey("version") ? QueryValues.Int(query, "version", 1, 1, int.MaxValue) : null;

    /// <summary>The request, once its caller may read skills: the API key or an environment key, never a sessions token.</summary>
    private static HttpContext SkillReader(HttpContext context)
    {
        if (Caller.Of(context).Kind == CallerKind.SessionsToken)
        {
            throw ApiException.Forbidden("The skills API does not accept a sessions token: have the orchestrator stage the session's skills into its sandbox, or bake them into the image.");
        }

        return context;
    }
}
