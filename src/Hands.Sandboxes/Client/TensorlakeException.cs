using System.Globalization;
using Hands.Common;

namespace Hands.Sandboxes.Client;

/// <summary>
/// A non-success answer from the Tensorlake API or a sandbox's daemon: the HTTP status, the daemon's error code when it
/// sent one (<c>NOT_FOUND</c>, <c>PATH_TRAVERSAL</c>, ...), the message, and the W3C trace id of the request.
/// Conditions the client detects itself (no answer, a wait that ran out, a terminal state) are the subclasses
/// <see cref="TensorlakeConnectionException"/>, <see cref="TensorlakeTimeoutException"/>,
/// <see cref="SandboxTerminatedException"/> and <see cref="SnapshotFailedException"/>: callers match on those types.
/// </summary>
public class TensorlakeException : HandsException
{
    public TensorlakeException() { }

    public TensorlakeException(string message) : base(message) { }

    public TensorlakeException(string message, Exception innerException) : base(message, innerException) { }

    public TensorlakeException(int status, string? code, string message, string? traceId, Exception? inner = null)
        : base(Format(status, code, message), status, code, traceId, inner)
    {
        ErrorMessage = message;
    }

    public string ErrorMessage { get; } = "";

    /// <summary>The W3C trace id every attempt of the failed call carried (the same as <see cref="HandsException.RequestId"/>).</summary>
    public string? TraceId => RequestId;

    public bool IsNotFound => Status == 404;

    private static string Format(int status, string? code, string message) =>
        $"{(status == 0 ? "no response" : status.ToString(CultureInfo.InvariantCulture))}{(code is null ? "" : " " + code)}: {message}";
}
