using System.Globalization;
using System.Text.Json;

namespace Hands.Protocol.Client;

/// <summary>The <c>error.type</c> attribute of a span that failed, by the official SDK's rules (<c>internal/tracing.ts</c> <c>errorType</c>).</summary>
public static class TraceErrorType
{
    /// <summary>
    /// A timeout is <c>client_timeout_error</c>, a connection failure <c>connection_error</c>, an error answer the type
    /// of its envelope (else its status code), anything else <c>client_error</c> (an unreadable body, a local failure).
    /// </summary>
    public static string Of(Exception error) => error switch
    {
        ManagedAgentsException { Status: 0, InnerException: OperationCanceledException or TimeoutException } => "client_timeout_error",
        ManagedAgentsException { Status: 0, InnerException: HttpRequestException or IOException } => "connection_error",
        ManagedAgentsException { ErrorType: { Length: > 0 } type } => type,
        ManagedAgentsException { Status: > 0 } api => api.Status.ToString(CultureInfo.InvariantCulture),
        TimeoutException => "client_timeout_error",
        HttpRequestException or IOException => "connection_error",
        JsonException => "client_error",
        _ => "client_error",
    };
}
