using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>
/// Gives every response a <c>request-id</c> header and turns every failure into the API's error envelope:
/// <see cref="ApiException"/>, oversized bodies (413 <c>request_too_large</c>), and anything unexpected (500, no detail).
/// </summary>
public sealed class ErrorEnvelopeMiddleware(RequestDelegate next, ILogger<ErrorEnvelopeMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        var requestId = Ids.New("req");
        context.Items[nameof(requestId)] = requestId;
        context.Response.Headers["request-id"] = requestId;
        try
        {
            await next(context);
        }
        catch (ApiException ex)
        {
            await WriteAsync(context, ex.Status, ex.ErrorType, ex.Message, ex.Details, requestId, ex.ShouldRetry, ex.PathConflict);
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            await WriteAsync(context, 413, ErrorTypes.RequestTooLarge, "Request exceeds the maximum allowed body size of 32 MB.", null, requestId, false);
        }
        catch (BadHttpRequestException ex)
        {
            await WriteAsync(context, ex.StatusCode, ErrorTypes.InvalidRequest, ex.Message, null, requestId, false);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // the client went away; nothing to answer
        }
        catch (Exception ex)
        {
            logger.LogError(ex, "unhandled error on {Method} {Path} ({RequestId})", context.Request.Method, context.Request.Path, requestId);
            await WriteAsync(context, 500, ErrorTypes.Api, "Internal server error.", null, requestId, true);
        }
    }

    public static async Task WriteAsync(HttpContext context, int status, string type, string message, JsonElement? details, string requestId, bool shouldRetry,
        (string Path, string MemoryId)? pathConflict = null)
    {
        if (context.Response.HasStarted)
        {
            return;
        }

        context.Response.Clear();
        context.Response.Headers["request-id"] = requestId;
        if (!shouldRetry)
        {
            context.Response.Headers["x-should-retry"] = "false";
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        var envelope = new ErrorEnvelope
        {
            Error = new ErrorBody { Type = type, Message = message, Details = details, ConflictingPath = pathConflict?.Path, ConflictingMemoryId = pathConflict?.MemoryId },
            RequestId = requestId,
        };
        await JsonSerializer.SerializeAsync(context.Response.Body, envelope, ProtocolJsonContext.Default.ErrorEnvelope, context.RequestAborted);
    }
}
