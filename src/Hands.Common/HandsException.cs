namespace Hands.Common;

/// <summary>
/// The common base of every error a Hands component reports to its caller (an API's non-success answer, a wait that
/// ran out, a request refused), so a front end such as the CLI catches one type and prints one line.
/// Subclasses name the condition; callers branch on the type, never on <see cref="Code"/>'s text.
/// </summary>
public abstract class HandsException : Exception
{
    protected HandsException() { }

    protected HandsException(string message) : base(message) { }

    protected HandsException(string message, Exception? innerException) : base(message, innerException) { }

    /// <param name="message">The whole message, as shown to a user.</param>
    /// <param name="status">The HTTP status behind the error; 0 when no answer arrived or none applies.</param>
    /// <param name="code">The machine-readable code the server sent, if any.</param>
    /// <param name="requestId">The id that correlates the error with the server's logs, if any.</param>
    /// <param name="innerException">The cause.</param>
    protected HandsException(string message, int status, string? code, string? requestId, Exception? innerException = null)
        : base(message, innerException)
    {
        Status = status;
        Code = code;
        RequestId = requestId;
    }

    /// <summary>The HTTP status behind the error; 0 when no answer arrived or none applies.</summary>
    public int Status { get; }

    /// <summary>The machine-readable code the server sent (<c>not_found_error</c>, <c>PATH_TRAVERSAL</c>, ...), for messages and logs.</summary>
    public string? Code { get; }

    /// <summary>The id that correlates this error with the server's logs (a <c>request-id</c> or W3C trace id), if any.</summary>
    public string? RequestId { get; }
}
