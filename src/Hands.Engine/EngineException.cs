namespace Hands.Engine;

/// <summary>A request the engine refuses or cannot complete: the HTTP status and a message that says what to do.</summary>
public class EngineException : Exception
{
    public EngineException() { }

    public EngineException(string message) : base(message) { }

    public EngineException(string message, Exception innerException) : base(message, innerException) { }

    public EngineException(int status, string message, Exception? innerException = null) : base(message, innerException) => Status = status;

    public int Status { get; } = 500;
}
