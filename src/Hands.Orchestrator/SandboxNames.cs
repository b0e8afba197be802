namespace Hands.Orchestrator;

/// <summary>
/// Session sandbox names: <c>agent-</c> plus the session id lower-cased with every character outside
/// <c>[a-z0-9-]</c> mapped to <c>-</c>, so the name is a valid sandbox name and the same session always finds the
/// same sandbox.
/// </summary>
public static class SandboxNames
{
    /// <summary>The prefix every session sandbox carries (the janitor looks only at these).</summary>
    public const string SessionPrefix = "agent-";

    public static string ForSession(string sessionId)
    {
        ArgumentException.ThrowIfNullOrEmpty(sessionId);
        return string.Create(SessionPrefix.Length + sessionId.Length, sessionId, (span, id) =>
        {
            SessionPrefix.AsSpan().CopyTo(span);
            for (var i = 0; i < id.Length; i++)
            {
                var c = char.ToLowerInvariant(id[i]);
                span[SessionPrefix.Length + i] = c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' ? c : '-';
            }
        });
    }
}
