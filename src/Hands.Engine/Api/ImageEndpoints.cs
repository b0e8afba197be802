using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>
/// Registered images at Tensorlake's platform paths (<c>/platform/v1/sandbox-templates</c>, camelCase): a name for a
/// snapshot plus the Dockerfile whose ENV and WORKDIR become the image's settings. Errors are plain text.
/// </summary>
internal static partial class ImageEndpoints
{
    public static void Map(WebApplication app, SandboxManager sandboxes)
    {
        app.MapPost("/platform/v1/sandbox-templates", async ctx =>
        {
            JsonObject? body;
            try
            {
                body = await JsonSerializer.DeserializeAsync<JsonObject>(ctx.Request.Body, cancellationToken: ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (JsonException)
            {
                body = null;
            }

            var name = body?["name"]?.GetValue<string>();
            var snapshotId = body?["snapshotId"]?.GetValue<string>();
            if (name is null || snapshotId is null)
            {
                await LifecycleEndpoints.Text(ctx, 400, "the body needs 'name' and 'snapshotId'").ConfigureAwait(false);
                return;
            }

            if (!ImageName().IsMatch(name) || name is ImageStore.Host or ImageStore.Debian)
            {
                await LifecycleEndpoints.Text(ctx, 400, $"image name '{name}' is not valid: lowercase letters, digits, '.', '_', '-' and '/', not 'host' or 'debian'").ConfigureAwait(false);
                return;
            }

            try
            {
                sandboxes.RegisterImage(new ImageRecord
                {
                    Name = name,
                    SnapshotId = snapshotId,
                    Dockerfile = body?["dockerfile"]?.GetValue<string>(),
                    CreatedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                });
            }
            catch (EngineException ex)
            {
                await LifecycleEndpoints.Text(ctx, ex.Status, ex.Message).ConfigureAwait(false);
                return;
            }

            ctx.Response.StatusCode = 200;
            await ctx.Response.WriteAsJsonAsync(new JsonObject { ["name"] = name, ["snapshotId"] = snapshotId }, ctx.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/platform/v1/sandbox-templates", ctx => ctx.Response.WriteAsJsonAsync(new JsonObject
        {
            ["items"] = new JsonArray([.. sandboxes.Images.Registered().Select(i => (JsonNode)new JsonObject
            {
                ["name"] = i.Name,
                ["snapshotId"] = i.SnapshotId,
                ["createdAt"] = i.CreatedAt,
            })]),
        }, ctx.RequestAborted));
        app.MapDelete("/platform/v1/sandbox-templates/{name}", async ctx =>
        {
            var name = Uri.UnescapeDataString((string)ctx.Request.RouteValues["name"]!);
            if (!sandboxes.Images.Unregister(name))
            {
                await LifecycleEndpoints.Text(ctx, 404, $"image '{name}' not found").ConfigureAwait(false);
                return;
            }

            ctx.Response.StatusCode = 200;
        });
    }

    [GeneratedRegex("^[a-z0-9][a-z0-9._/-]{0,127}$")]
    private static partial Regex ImageName();
}
