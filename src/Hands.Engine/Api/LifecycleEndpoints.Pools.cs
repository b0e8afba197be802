using System.Text.Json;
using System.Text.Json.Nodes;
using Hands.Engine.Sandboxes;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hands.Engine.Api;

internal static partial class LifecycleEndpoints
{
    /// <summary>
    /// <c>/sandbox-pools</c> with the shapes and statuses of Tensorlake's SDK (<c>crates/cloud-sdk/src/sandboxes</c>)
    /// and server: create → <c>{pool_id, namespace}</c>; list → <c>{pools}</c>; get adds <c>containers</c>; PUT replaces
    /// the whole configuration (<c>network</c>: absent keeps, null clears, an object replaces); DELETE answers 409 while
    /// a claimed sandbox lives; a claim answers like a create, plus <c>claim_configuration_applied</c>, and 429 when the
    /// pool is at <c>max_containers</c>.
    /// </summary>
    private static void MapPools(RouteGroupBuilder group, SandboxManager sandboxes, WireMapper wire)
    {
        group.MapPost("/sandbox-pools", ctx => Handle(ctx, async ns =>
        {
            var spec = await ReadPoolAsync(ctx).ConfigureAwait(false);
            var pool = sandboxes.CreatePool(spec, ns);
            await Json(ctx, 200, new JsonObject { ["pool_id"] = pool.Id, ["namespace"] = pool.Namespace }).ConfigureAwait(false);
        }));
        group.MapGet("/sandbox-pools", ctx => Handle(ctx, ns => Json(ctx, 200, new JsonObject
        {
            ["pools"] = new JsonArray([.. sandboxes.ListPools(ns).Select(p => (JsonNode)WireMapper.Pool(p))]),
        })));
        group.MapGet("/sandbox-pools/{id}", ctx => Handle(ctx, ns =>
        {
            var pool = sandboxes.GetPool(Id(ctx), ns);
            return Json(ctx, 200, WireMapper.Pool(pool, sandboxes.PoolMembers(pool)));
        }));
        group.MapPut("/sandbox-pools/{id}", ctx => Handle(ctx, async ns =>
        {
            var spec = await ReadPoolAsync(ctx).ConfigureAwait(false);
            var pool = await sandboxes.UpdatePoolAsync(Id(ctx), ns, spec, ctx.RequestAborted).ConfigureAwait(false);
            await Json(ctx, 200, WireMapper.Pool(pool)).ConfigureAwait(false);
        }));
        group.MapDelete("/sandbox-pools/{id}", ctx => Handle(ctx, async ns =>
        {
            await sandboxes.DeletePoolAsync(Id(ctx), ns, ctx.RequestAborted).ConfigureAwait(false);
            ctx.Response.StatusCode = 200;
        }));
        group.MapPost("/sandbox-pools/{id}/sandboxes", ctx => Handle(ctx, async ns =>
        {
            if (ctx.Request.ContentLength is > 0 || ctx.Request.Headers.TransferEncoding.Count > 0)
            {
                // The SDK sends a body only for claim-time file systems; it never sends a name.
                var body = await ReadAsync(ctx, SandboxesJsonContext.Default.DictionaryStringJsonElement).ConfigureAwait(false);
                if (body.ContainsKey("name"))
                {
                    throw new EngineException(400, "a claim takes no name; PATCH the claimed sandbox with {\"name\": ...} afterwards");
                }

                if (body.TryGetValue("file_systems", out var mounts) && mounts.ValueKind == JsonValueKind.Array && mounts.GetArrayLength() > 0)
                {
                    throw new EngineException(400, "file-system mounts are not served by this engine; claim without file_systems");
                }
            }

            var record = await sandboxes.ClaimAsync(Id(ctx), ns, ctx.RequestAborted).ConfigureAwait(false);
            var answer = wire.ForCaller(ctx).Sandbox(record);
            // Nothing was asked of the claim beyond the pool's configuration, so all of it was applied.
            answer["claim_configuration_applied"] = true;
            await Json(ctx, 200, answer).ConfigureAwait(false);
        }));
    }

    /// <summary>A pool's body; the policy is read from <c>network</c> (the SDK's request field) or <c>network_policy</c>.</summary>
    private static async Task<PoolSpec> ReadPoolAsync(HttpContext ctx)
    {
        JsonElement body;
        try
        {
            using var document = await JsonDocument.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted).ConfigureAwait(false);
            body = document.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new EngineException(400, $"the body is not valid JSON: {ex.Message}");
        }

        if (body.ValueKind != JsonValueKind.Object)
        {
            throw new EngineException(400, "the body must be a JSON object");
        }

        SandboxPoolRequest request;
        NetworkPolicy? policy = null;
        var networkSet = body.TryGetProperty("network", out var network) || body.TryGetProperty("network_policy", out network);
        try
        {
            request = body.Deserialize(SandboxesJsonContext.Default.SandboxPoolRequest) ?? throw new EngineException(400, "the body must be a JSON object");
            if (networkSet && network.ValueKind != JsonValueKind.Null)
            {
                policy = network.ValueKind == JsonValueKind.Object
                    ? network.Deserialize(SandboxesJsonContext.Default.NetworkPolicy)
                    : throw new EngineException(400, "network must be an object or null");
            }
        }
        catch (JsonException ex)
        {
            throw new EngineException(400, $"the body is not a valid pool (image, resources{{cpus, memory_mb, ephemeral_disk_mb}}, timeout_secs, entrypoint, max_containers, warm_containers, network): {ex.Message}");
        }

        var resources = request.Resources ?? new SandboxPoolResources();
        return new PoolSpec(request.Image, resources.Cpus ?? 1.0, resources.MemoryMb ?? 1024, resources.Disk, request.TimeoutSecs, request.Entrypoint,
            request.MaxContainers, request.WarmContainers, networkSet, policy);
    }
}
