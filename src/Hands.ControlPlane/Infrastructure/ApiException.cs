using System.Text.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>An error answered with the API's envelope. Thrown by handlers, written by <see cref="ErrorEnvelopeMiddleware"/>.</summary>
public sealed class ApiException : Exception
{
    public ApiException() : this(500, ErrorTypes.Api, "internal error") { }

    public ApiException(string message) : this(400, ErrorTypes.InvalidRequest, message) { }

    public ApiException(string message, Exception innerException) : base(message, innerException)
    {
        Status = 500;
        ErrorType = ErrorTypes.Api;
    }

    public ApiException(int status, string errorType, string message, JsonElement? details = null, bool shouldRetry = true) : base(message)
    {
        Status = status;
        ErrorType = errorType;
        Details = details;
        ShouldRetry = shouldRetry;
    }

    public int Status { get; }
    public string ErrorType { get; }
    public JsonElement? Details { get; }

    /// <summary>False adds <c>x-should-retry: false</c> so SDK clients do not retry a permanent 409.</summary>
    public bool ShouldRetry { get; }

    /// <summary>Set on <c>memory_path_conflict_error</c>: the blocking path and memory, written beside the message.</summary>
    public (string Path, string MemoryId)? PathConflict { get; init; }

    public static ApiException Invalid(string message) => new(400, ErrorTypes.InvalidRequest, message);
    public static ApiException NotFound(string message) => new(404, ErrorTypes.NotFound, message);
    public static ApiException Conflict(string message) => new(409, ErrorTypes.Conflict, message, shouldRetry: false);
    public static ApiException Forbidden(string message) => new(403, ErrorTypes.Permission, message);
    public static ApiException Unauthorized(string message) => new(401, ErrorTypes.Authentication, message);
}
