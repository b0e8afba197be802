namespace Hands.Protocol.Client;

/// <summary>
/// How a request authenticates. The app side uses the organization API key (<c>x-api-key</c>); workers use an
/// environment key or a per-session token as <c>Authorization: Bearer</c>. Exactly one is ever sent: the service
/// rejects requests that carry both.
/// </summary>
public sealed class ManagedAgentsCredential
{
    private ManagedAgentsCredential(string value, bool isBearer)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            throw new ArgumentException("The credential is empty.", nameof(value));
        }

        Value = value;
        IsBearer = isBearer;
    }

    internal string Value { get; }

    /// <summary>True for <c>Authorization: Bearer</c>, false for <c>x-api-key</c>.</summary>
    public bool IsBearer { get; }

    /// <summary>The organization API key, sent as <c>x-api-key</c>.</summary>
    public static ManagedAgentsCredential ApiKey(string key) => new(key, isBearer: false);

    /// <summary>An environment key or sessions token, sent as <c>Authorization: Bearer</c>.</summary>
    public static ManagedAgentsCredential Bearer(string token) => new(token, isBearer: true);

    /// <summary>Never prints the secret.</summary>
    public override string ToString() => IsBearer ? "Bearer ***" : "x-api-key ***";
}
