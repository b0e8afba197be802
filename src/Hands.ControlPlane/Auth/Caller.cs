using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Auth;

/// <summary>Which credential a request carried.</summary>
public enum CallerKind
{
    /// <summary>The organization API key (app side).</summary>
    ApiKey,
    /// <summary>An environment key (worker side, one environment).</summary>
    EnvironmentKey,
    /// <summary>A work item's sessions token (one session, one work item).</summary>
    SessionsToken,
}

/// <summary>The authenticated caller of a request and the scope its credential grants.</summary>
public sealed record Caller(CallerKind Kind, string? EnvironmentId = null, string? SessionId = null, string? WorkId = null)
{
    private const string ItemKey = "hands.caller";

    public static Caller Of(HttpContext context) =>
        context.Items[ItemKey] as Caller ?? throw ApiException.Unauthorized("Authentication required.");

    internal static void Set(HttpContext context, Caller caller) => context.Items[ItemKey] = caller;

    public bool IsWorker => Kind != CallerKind.ApiKey;

    /// <summary>Only the organization API key may do <paramref name="what"/>.</summary>
    public void RequireApiKey(string what)
    {
        if (Kind != CallerKind.ApiKey)
        {
            throw ApiException.Forbidden($"{Describe()} cannot {what}; use the organization API key.");
        }
    }

    /// <summary>The API key, or a worker credential scoped to <paramref name="environmentId"/>.</summary>
    public void RequireEnvironment(string environmentId, bool allowSessionsToken = true)
    {
        if (Kind == CallerKind.ApiKey)
        {
            return;
        }

        if (Kind == CallerKind.SessionsToken && !allowSessionsToken)
        {
            throw ApiException.Forbidden("A sessions token is scoped to one session's work item and cannot call this endpoint; use the environment key.");
        }

        if (!string.Equals(EnvironmentId, environmentId, StringComparison.Ordinal))
        {
            throw ApiException.Forbidden($"{Describe()} is not valid for environment {environmentId}.");
        }
    }

    /// <summary>The API key, an environment key of the session's environment, or that session's token.</summary>
    public void RequireSession(string sessionId, string environmentId)
    {
        RequireEnvironment(environmentId);
        if (Kind == CallerKind.SessionsToken && !string.Equals(SessionId, sessionId, StringComparison.Ordinal))
        {
            throw ApiException.Forbidden($"This sessions token is valid only for session {SessionId}.");
        }
    }

    /// <summary>The API key, the environment's key, or the token of this very work item.</summary>
    public void RequireWork(string environmentId, string workId)
    {
        RequireEnvironment(environmentId);
        if (Kind == CallerKind.SessionsToken && !string.Equals(WorkId, workId, StringComparison.Ordinal))
        {
            throw ApiException.Forbidden($"This sessions token is valid only for work item {WorkId}.");
        }
    }

    /// <summary>A worker credential (environment key or sessions token) of this environment; the API key is refused.</summary>
    public void RequireWorkerOf(string environmentId, string what)
    {
        if (Kind == CallerKind.ApiKey)
        {
            throw ApiException.Forbidden($"The organization API key cannot {what}; use the environment key as Authorization: Bearer.");
        }

        RequireEnvironment(environmentId, allowSessionsToken: false);
    }

    private string Describe() => Kind switch
    {
        CallerKind.EnvironmentKey => "An environment key",
        CallerKind.SessionsToken => "A sessions token",
        _ => "The API key",
    };
}
