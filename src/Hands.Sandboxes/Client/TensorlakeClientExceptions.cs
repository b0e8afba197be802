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

/// <summary>A pool call named a pool the provider does not have (404), as the SDK's <c>PoolNotFoundError</c>.</summary>
public sealed class PoolNotFoundException : TensorlakeException
{
    public PoolNotFoundException() { }

    public PoolNotFoundException(string message) : base(message) { }

    public PoolNotFoundException(string message, Exception innerException) : base(message, innerException) { }

    public PoolNotFoundException(string poolId, TensorlakeException answer)
        : base(answer?.Status ?? 404, "POOL_NOT_FOUND", answer?.ErrorMessage is { Length: > 0 } m ? m : $"sandbox pool {poolId} not found", answer?.TraceId, answer) => PoolId = poolId;

    /// <summary>The pool's id as it was asked for.</summary>
    public string? PoolId { get; }
}

/// <summary>A pool cannot be deleted while sandboxes claimed from it live (409), as the SDK's <c>PoolInUseError</c>.</summary>
public sealed class PoolInUseException : TensorlakeException
{
    public PoolInUseException() { }

    public PoolInUseException(string message) : base(message) { }

    public PoolInUseException(string message, Exception innerException) : base(message, innerException) { }

    public PoolInUseException(string poolId, TensorlakeException answer)
        : base(answer?.Status ?? 409, "POOL_IN_USE", answer?.ErrorMessage is { Length: > 0 } m ? m : $"sandbox pool {poolId} is in use", answer?.TraceId, answer) => PoolId = poolId;

    /// <summary>The pool's id as it was asked for.</summary>
    public string? PoolId { get; }
}

/// <summary>
/// A claim found no warm sandbox and the pool at its <c>max_containers</c> (the local engine answers 429). Tensorlake's
/// SDK names no such error: its server keeps such a claim pending (<c>pending_reason: pool_at_capacity</c>) instead,
/// which <see cref="TensorlakeClient.ClaimAsync"/> returns as an answer. Retrying later may succeed; creating a sandbox
/// outside the pool is the other way out.
/// </summary>
public sealed class PoolAtCapacityException : TensorlakeException
{
    public PoolAtCapacityException() { }

    public PoolAtCapacityException(string message) : base(message) { }

    public PoolAtCapacityException(string message, Exception innerException) : base(message, innerException) { }

    public PoolAtCapacityException(string poolId, TensorlakeException answer)
        : base(answer?.Status ?? 429, "POOL_AT_CAPACITY", answer?.ErrorMessage is { Length: > 0 } m ? m : $"sandbox pool {poolId} is at capacity", answer?.TraceId, answer) => PoolId = poolId;

    /// <summary>The pool's id as it was asked for.</summary>
    public string? PoolId { get; }
}
