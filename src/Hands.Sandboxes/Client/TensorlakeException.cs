namespace Hands.Sandboxes.Client;

/// <summary>
/// A non-success answer from the Tensorlake API or a sandbox's daemon: the HTTP status, the daemon's error code when it
/// sent one (<c>NOT_FOUND</c>, <c>PATH_TRAVERSAL</c>, ...), the message, and the W3C trace id of the request.
/// </summary>
public class TensorlakeException : Exception
{
    public TensorlakeException() { }

    public TensorlakeException(string message) : base(message) { }

    public TensorlakeException(string message, Exception innerException) : base(message, innerException) { }

    public TensorlakeException(int status, string? code, string message, string? traceId, Exception? inner = null)
        : base($"{(status == 0 ? "no response" : status.ToString(System.Globalization.CultureInfo.InvariantCulture))}{(code is null ? "" : " " + code)}: {message}", inner)
    {
        Status = status;
        Code = code;
        ErrorMessage = message;
        TraceId = traceId;
    }

    public int Status { get; }
    public string? Code { get; }
    public string ErrorMessage { get; } = "";
    public string? TraceId { get; }

    public bool IsNotFound => Status == 404;
}
