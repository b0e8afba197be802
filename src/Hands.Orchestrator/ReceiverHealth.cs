namespace Hands.Orchestrator;

/// <summary>The receiver's last answer to <c>/healthz</c>: whether it was healthy, and what it said (or why it said nothing).</summary>
public sealed record ReceiverHealth(bool Healthy, string? LastAnswer);
