using System.Text.Json;
using System.Text.Json.Nodes;
using Hands.Engine.Sandboxes;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hands.Engine.Api;

/// <summary>
/// Tensorlake's lifecycle API at its local-mode paths (<c>/v1/namespaces/{ns}/sandboxes…</c>, <c>/snapshots…</c>,
/// <c>/sandbox-pools…</c>) and, for convenience, the cloud's flat paths in namespace <c>default</c>. Errors are plain
/// text, as the service's.
/// </summary>
internal static partial class LifecycleEndpoints
{
    public static void Map(WebApplication app, SandboxManager sandboxes, WireMapper wire, ApiKeyCheck auth, Ingress.TcpRelays relays)
    {
        app.Use(async (ctx, next) =>
        {
            if (ctx.Request.Path.StartsWithSegments("/healthz") || HealthEndpoints.Paths.Any(p => ctx.Request.Path.Equals(p, StringComparison.OrdinalIgnoreCase)))
            {
                await next(ctx).ConfigureAwait(false);
                return;
            }

            var caller = auth.Authenticate(ctx.Request);
            if (caller is null)
            {
                await Text(ctx, 401, "missing or invalid API key: send 'Authorization: Bearer <key>' with the engine's key").ConfigureAwait(false);
                return;
            }

            if (caller.Scope is { } scope && ForkScope.Check(ctx, scope, sandboxes) is { } denied)
            {
                await Text(ctx, 403, denied).ConfigureAwait(false);
                return;
            }

            ctx.Items[typeof(EngineCaller)] = caller;
            await next(ctx).ConfigureAwait(false);
        });
        app.MapGet("/healthz", () => Results.Text("ok"));
        app.MapGet("/v1/engine", () => Results.Json(new JsonObject
        {
            ["criu"] = sandboxes.CriuAvailable,
            ["criu_problem"] = sandboxes.CriuProblem,
            ["ingress_endpoint"] = wire.IngressEndpoint,
            ["sandbox_url"] = wire.SandboxUrl,
        }));
        ImageEndpoints.Map(app, sandboxes);
        MapGroup(app.MapGroup("/v1/namespaces/{ns}"), sandboxes, wire, relays, auth);
        MapGroup(app.MapGroup(""), sandboxes, wire, relays, auth);
    }

    private static void MapGroup(RouteGroupBuilder group, SandboxManager sandboxes, WireMapper wire, Ingress.TcpRelays relays, ApiKeyCheck auth)
    {
        group.MapPost("/sandboxes", ctx => Handle(ctx, async ns =>
        {
            var request = await ReadAsync(ctx, SandboxesJsonContext.Default.CreateSandboxRequest).ConfigureAwait(false);
            if (CallerOf(ctx).Scope is { } scope)
            {
                if (!ForkScope.MayRestore(sandboxes, request.SnapshotId, ns, scope))
                {
                    throw new EngineException(403, $"this key may only fork sandbox {scope}: create needs a snapshot_id of one of its snapshots");
                }

                // A fork key's children inherit the parent's ports, access, egress policy, resources and idle timeout,
                // and run no entrypoint of the caller's choosing: the key cannot widen what the parent has.
                request.Network = null;
                request.ExposedPorts = null;
                request.AllowUnauthenticatedAccess = null;
                request.Resources = null;
                request.Entrypoint = null;
                request.TimeoutSecs = null;
            }

            var record = await sandboxes.CreateAsync(request, ns, ctx.RequestAborted, CallerOf(ctx).Scope).ConfigureAwait(false);
            await Json(ctx, 200, wire.ForCaller(ctx).Sandbox(record)).ConfigureAwait(false);
        }));
        group.MapGet("/sandboxes", ctx => Handle(ctx, ns => ListAsync(ctx, ns, sandboxes, wire)));
        group.MapGet("/sandboxes/{id}", ctx => Handle(ctx, ns => Json(ctx, 200, wire.ForCaller(ctx).Sandbox(sandboxes.Get(Id(ctx), ns)))));
        group.MapPatch("/sandboxes/{id}", ctx => Handle(ctx, async ns =>
        {
            var body = await ReadAsync(ctx, SandboxesJsonContext.Default.DictionaryStringJsonElement).ConfigureAwait(false);
            var record = body.TryGetValue("resources", out var resources)
                ? await sandboxes.ResizeAsync(Id(ctx), ns, ReadResize(body, resources), ctx.RequestAborted).ConfigureAwait(false)
                : await sandboxes.UpdateAsync(Id(ctx), ns, ReadPatch(body), ctx.RequestAborted).ConfigureAwait(false);
            await Json(ctx, 200, wire.ForCaller(ctx).Sandbox(record)).ConfigureAwait(false);
        }));
        group.MapDelete("/sandboxes/{id}", ctx => Handle(ctx, async ns =>
        {
            var record = await sandboxes.DeleteAsync(Id(ctx), ns, "Terminated", ctx.RequestAborted).ConfigureAwait(false);
            await relays.CloseAsync(record.Id).ConfigureAwait(false);
            ctx.Response.StatusCode = 200;
        }));
        // Engine extension: a loopback TCP relay to an exposed port that does not speak HTTP.
        group.MapPost("/sandboxes/{id}/tcp-relays", ctx => Handle(ctx, async ns =>
        {
            var body = await ReadAsync(ctx, SandboxesJsonContext.Default.DictionaryStringJsonElement).ConfigureAwait(false);
            if (!body.TryGetValue("port", out var port) || !port.TryGetInt32(out var number))
            {
                throw new EngineException(400, "the body must be {\"port\": N} with N an exposed port");
            }

            var record = sandboxes.Get(Id(ctx), ns);
            if (!record.IsAlive)
            {
                throw new EngineException(400, $"sandbox {record.Id} is terminated");
            }

            var endpoint = relays.Open(record, number);
            await Json(ctx, 200, new JsonObject { ["port"] = number, ["address"] = endpoint.ToString() }).ConfigureAwait(false);
        }));
        group.MapPost("/sandboxes/{id}/suspend", ctx => Handle(ctx, async ns =>
        {
            // Engine extension: ?hibernate=true goes straight to tier 2 (CRIU to disk) instead of freezing first.
            var hibernate = string.Equals(ctx.Request.Query["hibernate"], "true", StringComparison.OrdinalIgnoreCase);
            var changed = await sandboxes.SuspendAsync(Id(ctx), ns, hibernate, ctx.RequestAborted).ConfigureAwait(false);
            await Json(ctx, changed ? 202 : 200, wire.ForCaller(ctx).Sandbox(sandboxes.Get(Id(ctx), ns))).ConfigureAwait(false);
        }));
        group.MapPost("/sandboxes/{id}/resume", ctx => Handle(ctx, async ns =>
        {
            var changed = await sandboxes.ResumeAsync(Id(ctx), ns, ctx.RequestAborted).ConfigureAwait(false);
            await Json(ctx, changed ? 202 : 200, wire.ForCaller(ctx).Sandbox(sandboxes.Get(Id(ctx), ns))).ConfigureAwait(false);
        }));
        group.MapPost("/sandboxes/{id}/snapshot", ctx => Handle(ctx, async ns =>
        {
            var type = SnapshotType.Filesystem;
            if (ctx.Request.ContentLength is > 0 || ctx.Request.Headers.TransferEncoding.Count > 0)
            {
                var body = await ReadAsync(ctx, SandboxesJsonContext.Default.DictionaryStringJsonElement).ConfigureAwait(false);
                if (body.TryGetValue("snapshot_type", out var value) && value.ValueKind == JsonValueKind.String)
                {
                    type = value.GetString()!;
                }
                else if (body.TryGetValue("snapshot_content_mode", out var mode) && mode.ValueKind == JsonValueKind.String)
                {
                    // The older spelling: "full" meant memory too.
                    type = mode.GetString() == "full" ? SnapshotType.Memory : SnapshotType.Filesystem;
                }
            }

            var snapshot = await sandboxes.SnapshotAsync(Id(ctx), ns, type, ctx.RequestAborted).ConfigureAwait(false);
            await Json(ctx, 200, new JsonObject { ["snapshot_id"] = snapshot.Id, ["status"] = snapshot.Status }).ConfigureAwait(false);
        }));
        // Engine extension: a key that may fork this sandbox and nothing else (see ForkScope).
        group.MapPost("/sandboxes/{id}/fork-keys", ctx => Handle(ctx, async ns =>
        {
            if (CallerOf(ctx).IsScoped)
            {
                throw new EngineException(403, "a fork key cannot issue keys");
            }

            if (!auth.Required)
            {
                // Without an engine key every caller already has full access: a scoped key would restrict nothing.
                throw new EngineException(409, "fork keys need an engine that requires an API key (HANDS_ENGINE_API_KEY); without one, any caller, a sandbox included, has full access");
            }

            var record = sandboxes.Get(Id(ctx), ns);
            if (!record.IsAlive)
            {
                throw new EngineException(400, $"sandbox {record.Id} is terminated");
            }

            await Json(ctx, 200, new JsonObject { ["sandbox_id"] = record.Id, ["key"] = auth.ForkKeys.Issue(record.Id) }).ConfigureAwait(false);
        }));
        MapPools(group, sandboxes, wire);
        MapNetwork(group, sandboxes);
        group.MapGet("/snapshots", ctx => Handle(ctx, ns => Json(ctx, 200, new JsonObject
        {
            ["snapshots"] = new JsonArray([.. sandboxes.ListSnapshots(ns).Select(s => (JsonNode)WireMapper.Snapshot(s))]),
        })));
        group.MapGet("/snapshots/{id}", ctx => Handle(ctx, ns => Json(ctx, 200, WireMapper.Snapshot(sandboxes.GetSnapshot(Id(ctx), ns)))));
        group.MapDelete("/snapshots/{id}", ctx => Handle(ctx, async ns =>
        {
            await sandboxes.DeleteSnapshotAsync(Id(ctx), ns, ctx.RequestAborted).ConfigureAwait(false);
            ctx.Response.StatusCode = 200;
        }));
    }

    private static EngineCaller CallerOf(HttpContext ctx) => ctx.Items[typeof(EngineCaller)] as EngineCaller ?? EngineCaller.Full;

    /// <summary>
    /// <c>GET /sandboxes</c>: newest first, <c>limit</c> (default 100) and an opaque <c>cursor</c>; <c>status=running</c>
    /// returns the live running set only; without it the history includes terminated sandboxes.
    /// </summary>
    private static Task ListAsync(HttpContext ctx, string ns, SandboxManager sandboxes, WireMapper wire)
    {
        var limit = int.TryParse(ctx.Request.Query["limit"], out var l) && l > 0 ? Math.Min(l, 1000) : 100;
        var offset = 0;
        if (ctx.Request.Query["cursor"].ToString() is { Length: > 0 } cursor)
        {
            try
            {
                offset = int.Parse(System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(cursor)), System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (FormatException)
            {
                throw new EngineException(400, "cursor is not one this server issued; start again without it");
            }
        }

        var status = ctx.Request.Query["status"].ToString();
        var all = sandboxes.List(ns).Where(s => status.Length == 0 || s.Status == status).Reverse().ToList();
        var page = all.Skip(offset).Take(limit).ToList();
        var next = offset + page.Count < all.Count ? Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes((offset + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture))) : null;
        return Json(ctx, 200, new JsonObject
        {
            ["sandboxes"] = new JsonArray([.. page.Select(s => (JsonNode)wire.ForCaller(ctx).Sandbox(s))]),
            ["next_cursor"] = next,
            ["prev_cursor"] = null,
        });
    }

    /// <summary>A live resize: <c>resources</c> with whole <c>cpus</c>, <c>memory_mb</c>, <c>disk_mb</c>, alone in the body (as Tensorlake requires).</summary>
    private static ResizeRequest ReadResize(Dictionary<string, JsonElement> body, JsonElement resources)
    {
        if (body.Count != 1)
        {
            throw new EngineException(400, "resources cannot be combined with other fields in one update; send the resize alone");
        }

        if (resources.ValueKind != JsonValueKind.Object)
        {
            throw new EngineException(400, "resources must be an object with cpus, memory_mb and/or disk_mb");
        }

        double? cpus = null;
        int? memory = null, disk = null;
        foreach (var field in resources.EnumerateObject())
        {
            switch (field.Name)
            {
                case "cpus" when field.Value.ValueKind == JsonValueKind.Number:
                    cpus = field.Value.GetDouble();
                    break;
                case "memory_mb" when field.Value.ValueKind == JsonValueKind.Number && field.Value.TryGetInt32(out var m):
                    memory = m;
                    break;
                case "disk_mb" or "ephemeral_disk_mb" when field.Value.ValueKind == JsonValueKind.Number && field.Value.TryGetInt32(out var d):
                    disk = d;
                    break;
                case "cpus" or "memory_mb" or "disk_mb" or "ephemeral_disk_mb" when field.Value.ValueKind == JsonValueKind.Null:
                    break;
                default:
                    throw new EngineException(400, $"resources.{field.Name}: {(field.Name is "cpus" or "memory_mb" or "disk_mb" ? "must be a whole number" : "is not a resource that can be resized (cpus, memory_mb, disk_mb)")}");
            }
        }

        return new ResizeRequest(cpus, memory, disk);
    }

    private static SandboxPatch ReadPatch(Dictionary<string, JsonElement> body)
    {
        if (body.Count == 0)
        {
            throw new EngineException(400, "the update is empty; send at least one of name, exposed_ports, allow_unauthenticated_access, network, host_port_routes, or resources alone");
        }

        string? name = body.TryGetValue("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
        bool? allow = body.TryGetValue("allow_unauthenticated_access", out var a) && a.ValueKind is JsonValueKind.True or JsonValueKind.False ? a.GetBoolean()
            : body.TryGetValue("allow_unauthenticated_proxy_access", out var legacy) && legacy.ValueKind is JsonValueKind.True or JsonValueKind.False ? legacy.GetBoolean() : null;
        List<int>? ports = null;
        if (body.TryGetValue("exposed_ports", out var p))
        {
            ports = p.ValueKind == JsonValueKind.Array && p.EnumerateArray().All(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out _))
                ? [.. p.EnumerateArray().Select(e => e.GetInt32())]
                : throw new EngineException(400, "exposed_ports must be a list of port numbers");
        }

        var networkSet = body.TryGetValue("network", out var net) || body.TryGetValue("network_policy", out net);
        NetworkPolicy? policy = null;
        if (networkSet && net.ValueKind != JsonValueKind.Null)
        {
            policy = net.Deserialize(SandboxesJsonContext.Default.NetworkPolicy) ?? throw new EngineException(400, "network must be an object or null");
        }

        var routesSet = body.TryGetValue("host_port_routes", out var r);
        Dictionary<string, List<string>>? routes = null;
        if (routesSet && r.ValueKind != JsonValueKind.Null)
        {
            routes = r.ValueKind == JsonValueKind.Object && r.EnumerateObject().All(port => port.Value.ValueKind == JsonValueKind.Array && port.Value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String))
                ? r.EnumerateObject().ToDictionary(port => port.Name, port => port.Value.EnumerateArray().Select(e => e.GetString()!).ToList())
                : throw new EngineException(400, "host_port_routes must be an object of host port → list of 'METHOD /path', or null");
        }

        return new SandboxPatch(name, allow, ports, networkSet, policy, routesSet, routes);
    }

    private static async Task<T> ReadAsync<T>(HttpContext ctx, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted).ConfigureAwait(false)
                ?? throw new EngineException(400, "the body must be a JSON object");
        }
        catch (JsonException ex)
        {
            throw new EngineException(400, $"the body is not valid JSON for this request: {ex.Message}");
        }
    }

    private static string Id(HttpContext ctx) => (string)ctx.Request.RouteValues["id"]!;

    private static async Task Handle(HttpContext ctx, Func<string, Task> action)
    {
        var ns = ctx.Request.RouteValues.TryGetValue("ns", out var value) && value is string s ? s : "default";
        try
        {
            await action(ns).ConfigureAwait(false);
        }
        catch (EngineException ex)
        {
            await Text(ctx, ex.Status, ex.Message).ConfigureAwait(false);
        }
    }

    private static Task Json(HttpContext ctx, int status, JsonNode body)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        return ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted);
    }

    /// <summary>The lifecycle API's error shape: plain text, as Tensorlake's service answers.</summary>
    internal static Task Text(HttpContext ctx, int status, string message)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "text/plain; charset=utf-8";
        return ctx.Response.WriteAsync(message, ctx.RequestAborted);
    }
}
