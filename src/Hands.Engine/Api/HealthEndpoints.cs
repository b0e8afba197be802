using System.Text.Json.Nodes;
using Hands.Engine.Sandboxes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>
/// The engine's health, without a key (a probe has none; nothing in the answers is a secret):
/// <c>GET /livez</c> answers 200 while the process serves; <c>GET /readyz</c> answers 200 when the engine can take a
/// create, 503 with the failing checks otherwise. Checks: <c>runtime</c> (the OCI runtime answers <c>runc list</c>),
/// <c>volume</c> (the data volume is mounted), <c>disk</c> (free space above the low-water mark under which creates,
/// snapshots and hibernations answer 507); reported without gating readiness: <c>criu</c> (memory snapshots and
/// hibernation work; without it the engine still serves, with those refused).
/// </summary>
internal static class HealthEndpoints
{
    public static readonly string[] Paths = ["/livez", "/readyz"];

    public static void Map(WebApplication app, SandboxManager sandboxes)
    {
        app.MapGet("/livez", () => Results.Text("ok"));
        app.MapGet("/readyz", async (HttpContext ctx) =>
        {
            bool runtime;
            string? runtimeProblem = null;
            try
            {
                runtime = await sandboxes.Runtime.RespondsAsync(ctx.RequestAborted).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                (runtime, runtimeProblem) = (false, ex.Message);
            }

            var volume = sandboxes.Volume.IsMounted;
            var free = volume ? sandboxes.Volume.FreeBytes : 0;
            var disk = volume && free >= sandboxes.Volume.LowWaterBytes;
            var ready = runtime && volume && disk;
            var body = new JsonObject
            {
                ["status"] = ready ? "ready" : "not_ready",
                ["checks"] = new JsonObject
                {
                    ["runtime"] = new JsonObject { ["ok"] = runtime, ["problem"] = runtimeProblem ?? (runtime ? null : "the OCI runtime did not answer 'list'") },
                    ["volume"] = new JsonObject { ["ok"] = volume, ["problem"] = volume ? null : $"the data volume is not mounted at {sandboxes.Volume.MountPoint}" },
                    ["disk"] = new JsonObject
                    {
                        ["ok"] = disk,
                        ["free_bytes"] = free,
                        ["reserve_bytes"] = sandboxes.Volume.LowWaterBytes,
                    },
                    ["criu"] = new JsonObject { ["ok"] = sandboxes.CriuAvailable, ["problem"] = sandboxes.CriuProblem, ["gates_readiness"] = false },
                },
            };
            ctx.Response.StatusCode = ready ? 200 : 503;
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(body.ToJsonString(), ctx.RequestAborted).ConfigureAwait(false);
        });
    }
}
