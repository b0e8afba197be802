using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Hands.SandboxDaemon.Endpoints;

/// <summary>JSON answers and the daemon's error shape <c>{"error": "...", "code": "..."}</c>.</summary>
internal static class DaemonResponses
{
    public static async Task Json<T>(HttpContext context, int status, T body, JsonTypeInfo<T> type)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await JsonSerializer.SerializeAsync(context.Response.Body, body, type, context.RequestAborted).ConfigureAwait(false);
    }

    public static Task Error(HttpContext context, int status, string code, string message) =>
        Json(context, status, new ErrorBody { Error = message, Code = code }, DaemonJsonContext.Default.ErrorBody);

    public static Task NoContent(HttpContext context)
    {
        context.Response.StatusCode = 204;
        return Task.CompletedTask;
    }

    public static async Task<T?> ReadAsync<T>(HttpContext context, JsonTypeInfo<T> type) where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(context.Request.Body, type, context.RequestAborted).ConfigureAwait(false);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
