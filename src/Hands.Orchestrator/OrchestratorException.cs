using Hands.Common;

namespace Hands.Orchestrator;

/// <summary>The orchestrator cannot go on as asked: a permanent API error, a lock held elsewhere, a sandbox that will not start.</summary>
public sealed class OrchestratorException : HandsException
{
    public OrchestratorException() { }

    public OrchestratorException(string message) : base(message) { }

    public OrchestratorException(string message, Exception innerException) : base(message, innerException) { }
}
