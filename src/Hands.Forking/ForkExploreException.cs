using Hands.Common;
using Hands.Sandboxes.Client;

namespace Hands.Forking;

/// <summary>Why an exploration could not start or finish (the branches' own failures are results, not exceptions).</summary>
public sealed class ForkExploreException : HandsException
{
    public ForkExploreException() { }

    public ForkExploreException(string message) : base(message) { }

    public ForkExploreException(string message, Exception innerException) : base(message, innerException) { }

    /// <summary>An error with the provider's HTTP status (507 disk full, 404 no such sandbox, 0 no answer).</summary>
    public ForkExploreException(string message, int status, Exception? innerException = null) : base(message, status, null, null, innerException) { }

    internal static ForkExploreException From(string doing, TensorlakeException ex) => new($"{doing}: {ex.ErrorMessage}", ex.Status, ex);
}
