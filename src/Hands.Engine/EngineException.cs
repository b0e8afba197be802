using Hands.Common;

namespace Hands.Engine;

/// <summary>A request the engine refuses or cannot complete: the HTTP status and a message that says what to do.</summary>
public class EngineException : HandsException
{
    public EngineException() : this("the engine could not complete the request") { }

    public EngineException(string message) : this(500, message) { }

    public EngineException(string message, Exception innerException) : this(500, message, innerException) { }

    /// <summary>A refusal with the HTTP status the engine answers with (500 unless said otherwise).</summary>
    public EngineException(int status, string message, Exception? innerException = null) : base(message, status, null, null, innerException) { }
}
