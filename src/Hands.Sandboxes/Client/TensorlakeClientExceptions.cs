namespace Hands.Sandboxes.Client;

/// <summary>No answer arrived: the connection failed on every attempt the retry policy allowed.</summary>
public sealed class TensorlakeConnectionException : TensorlakeException
{
    public TensorlakeConnectionException() { }

    public TensorlakeConnectionException(string message) : base(message) { }

    public TensorlakeConnectionException(string message, Exception innerException) : base(message, innerException) { }

    public TensorlakeConnectionException(string message, string? traceId, Exception? inner)
        : base(0, "CONNECTION_FAILED", message, traceId, inner) { }
}

/// <summary>
/// Time ran out on the client's side: a request got no answer within its timeout, or a wait
/// (<see cref="TensorlakeClient.WaitForStatusAsync"/>, <see cref="TensorlakeClient.WaitForSnapshotAsync"/>) did not
/// see the state it waited for. Never thrown when the caller's own token was cancelled.
/// </summary>
public sealed class TensorlakeTimeoutException : TensorlakeException
{
    public TensorlakeTimeoutException() { }

    public TensorlakeTimeoutException(string message) : base(message) { }

    public TensorlakeTimeoutException(string message, Exception innerException) : base(message, innerException) { }

    public TensorlakeTimeoutException(string message, string? traceId, Exception? inner)
        : base(0, "TIMEOUT", message, traceId, inner) { }
}

/// <summary>A sandbox being waited for terminated instead: a terminal state, so waiting or retrying cannot help.</summary>
public sealed class SandboxTerminatedException : TensorlakeException
{
    public SandboxTerminatedException() { }

    public SandboxTerminatedException(string message) : base(message) { }

    public SandboxTerminatedException(string message, Exception innerException) : base(message, innerException) { }

    public SandboxTerminatedException(string sandbox, string reason)
        : base(0, "TERMINATED", $"sandbox {sandbox} terminated: {reason}", null) => Sandbox = sandbox;

    /// <summary>The sandbox's id or name as it was asked for.</summary>
    public string? Sandbox { get; }
}

/// <summary>A snapshot being waited for failed: a terminal state, so waiting or retrying cannot help.</summary>
public sealed class SnapshotFailedException : TensorlakeException
{
    public SnapshotFailedException() { }

    public SnapshotFailedException(string message) : base(message) { }

    public SnapshotFailedException(string message, Exception innerException) : base(message, innerException) { }

    public SnapshotFailedException(string snapshotId, string reason)
        : base(0, "SNAPSHOT_FAILED", $"snapshot {snapshotId} failed: {reason}", null) => SnapshotId = snapshotId;

    /// <summary>The snapshot's id.</summary>
    public string? SnapshotId { get; }
}
