using System.Text;
using Hands.Hosting;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>Who is calling: the engine key's holder (everything), or the holder of a fork key (one sandbox's forks).</summary>
/// <param name="Scope">Null for full access; otherwise the sandbox whose forks this caller may manage.</param>
internal sealed record EngineCaller(string? Scope)
{
    public static readonly EngineCaller Full = new((string?)null);

    public bool IsScoped => Scope is not null;
}

/// <summary>
/// Bearer-key check in constant time. No key configured (only with <see cref="EngineOptions.AllowAnonymous"/>, an
/// explicit opt-in) means full access for every caller; a fork key (<see cref="ForkKeys"/>) is accepted either way and
/// yields a scoped caller.
/// </summary>
internal sealed class ApiKeyCheck(string? apiKey, ForkKeys forkKeys)
{
    private readonly byte[]? _expected = apiKey is null ? null : Encoding.UTF8.GetBytes(apiKey);

    public bool Required => _expected is not null;

    public ForkKeys ForkKeys => forkKeys;

    /// <summary>The caller, or null when the request must be refused (401).</summary>
    public EngineCaller? Authenticate(HttpRequest request)
    {
        var given = BearerToken.Of(request);
        if (given is not null && forkKeys.ScopeOf(given) is { } scope)
        {
            return new EngineCaller(scope);
        }

        if (_expected is null)
        {
            return EngineCaller.Full;
        }

        return BearerToken.Matches(given, _expected) ? EngineCaller.Full : null;
    }
}
