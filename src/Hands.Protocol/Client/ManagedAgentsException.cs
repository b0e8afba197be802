using System.Net;
using System.Text.Json;
using Hands.Common;

namespace Hands.Protocol.Client;

/// <summary>A non-success answer from the Managed Agents API, with the status, error type and request id.</summary>
public class ManagedAgentsException : HandsException
{
    public ManagedAgentsException() : this(0, null, "request failed", null, null) { }

    public ManagedAgentsException(string message) : this(0, null, message, null, null) { }

    public ManagedAgentsException(string message, Exception innerException) : base(message, innerException) { }

    public ManagedAgentsException(int status, string? errorType, string message, string? requestId, JsonElement? details, Exception? inner = null)
        : base(Format(status, errorType, message, requestId), status, errorType, requestId, inner)
    {
        ErrorMessage = message;
        Details = details;
    }

    /// <summary>The envelope's <c>error.type</c>, e.g. <c>not_found_error</c> (the same as <see cref="HandsException.Code"/>).</summary>
    public string? ErrorType => Code;

    /// <summary>The envelope's <c>error.message</c>.</summary>
    public string ErrorMessage { get; } = "";

    /// <summary>The envelope's <c>error.details</c>, if any.</summary>
    public JsonElement? Details { get; }

    /// <summary>
    /// True for errors a caller must not retry: every 4xx except 408, 409 and 429 (the official SDKs' rule).
    /// </summary>
    public bool IsFatal => Status is >= 400 and < 500 and not 408 and not 409 and not 429;

    internal static bool IsRetryableStatus(HttpStatusCode status) =>
        (int)status is 408 or 409 or 429 or >= 500;

    private static string Format(int status, string? type, string message, string? requestId)
    {
        var head = status == 0 ? "no response" : $"{status} {type ?? "error"}";
        return requestId is null ? $"{head}: {message}" : $"{head}: {message} (request-id {requestId})";
    }
}

/// <summary>A heartbeat refused with 412: someone else holds the lease. <see cref="CurrentState"/> is the server's view.</summary>
public sealed class HeartbeatPreconditionFailedException : ManagedAgentsException
{
    public HeartbeatPreconditionFailedException() { }

    public HeartbeatPreconditionFailedException(string message) : base(message) { }

    public HeartbeatPreconditionFailedException(string message, Exception innerException) : base(message, innerException) { }

    public HeartbeatPreconditionFailedException(ManagedAgentsException inner, Models.WorkHeartbeat? currentState)
        : base(inner.Status, inner.ErrorType, inner.ErrorMessage, inner.RequestId, inner.Details, inner)
    {
        CurrentState = currentState;
    }

    /// <summary>The lease as the server sees it, from <c>error.details.current_state</c>.</summary>
    public Models.WorkHeartbeat? CurrentState { get; }
}
