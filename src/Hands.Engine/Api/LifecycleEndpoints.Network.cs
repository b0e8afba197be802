using System.Text.Json;
using System.Text.Json.Nodes;
using Hands.Engine.Network.Telemetry;
using Hands.Engine.Sandboxes;
using Hands.Sandboxes.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hands.Engine.Api;

/// <summary>
/// Tensorlake's network telemetry reads: <c>GET /sandboxes/{id}/network/events|destinations|status</c> with
/// <c>from_ms</c>, <c>to_ms</c>, <c>limit</c> (1–500) and, for events, <c>cursor</c>. They answer for terminated
/// sandboxes too; a live sandbox is collected first, so an answer includes everything up to the request.
/// </summary>
internal static partial class LifecycleEndpoints
{
    private static void MapNetwork(RouteGroupBuilder group, SandboxManager sandboxes)
    {
        group.MapGet("/sandboxes/{id}/network/events", ctx => Handle(ctx, async ns =>
        {
            var record = await CollectedAsync(ctx, ns, sandboxes).ConfigureAwait(false);
            var query = NetworkQueryParameters.Parse(Query(ctx), record.Id, sandboxes.Time.GetUtcNow().ToUnixTimeMilliseconds(), allowCursor: true);
            await Json(ctx, 200, Node(sandboxes.NetworkTelemetry.Events(record, query), SandboxesJsonContext.Default.NetworkEventsResponse)).ConfigureAwait(false);
        }));
        group.MapGet("/sandboxes/{id}/network/destinations", ctx => Handle(ctx, async ns =>
        {
            var record = await CollectedAsync(ctx, ns, sandboxes).ConfigureAwait(false);
            var query = NetworkQueryParameters.Parse(Query(ctx), record.Id, sandboxes.Time.GetUtcNow().ToUnixTimeMilliseconds(), allowCursor: false);
            await Json(ctx, 200, Node(sandboxes.NetworkTelemetry.Destinations(record, query), SandboxesJsonContext.Default.NetworkDestinationsResponse)).ConfigureAwait(false);
        }));
        group.MapGet("/sandboxes/{id}/network/status", ctx => Handle(ctx, async ns =>
        {
            var record = await CollectedAsync(ctx, ns, sandboxes).ConfigureAwait(false);
            await Json(ctx, 200, Node(sandboxes.NetworkTelemetry.Status(record), SandboxesJsonContext.Default.NetworkCaptureStatus)).ConfigureAwait(false);
        }));
    }

    /// <summary>The sandbox (404 when unknown), its namespace read once more if it still has one.</summary>
    private static async Task<Storage.SandboxRecord> CollectedAsync(HttpContext ctx, string ns, SandboxManager sandboxes)
    {
        var record = sandboxes.Get(Id(ctx), ns);
        await sandboxes.CollectNetworkAsync(record, ctx.RequestAborted).ConfigureAwait(false);
        return record;
    }

    /// <summary>A query parameter given once, or null; one given twice is refused rather than guessed.</summary>
    private static Func<string, string?> Query(HttpContext ctx) => name =>
    {
        var values = ctx.Request.Query[name];
        return values.Count switch
        {
            0 => null,
            1 => values[0],
            _ => throw new EngineException(400, $"{name} is given {values.Count} times; give it once"),
        };
    };

    private static JsonNode Node<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) => JsonSerializer.SerializeToNode(value, type)!;
}
