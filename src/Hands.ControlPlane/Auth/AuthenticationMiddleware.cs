using System.Collections.Concurrent;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Hosting;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Auth;

/// <summary>
/// Authenticates every request but <c>GET /healthz</c> — whatever the path's case or encoding, since routing matches
/// <c>/V1/skills</c> and <c>/%761/skills</c> as <c>/v1/skills</c> — as the hosted service does: the API key as <c>x-api-key</c> (or, as the
/// npm SDK sends it, <c>Authorization: Bearer</c>), environment keys and sessions tokens as Bearer; both headers at
/// once are refused; an unknown or revoked credential is a 401 envelope that never echoes the credential. Also
/// enforces the <c>anthropic-version</c> and <c>anthropic-beta</c> headers.
/// </summary>
public sealed class AuthenticationMiddleware(RequestDelegate next, ControlPlaneCore core)
{
    public const string ApiKeyHashSetting = "api_key_sha256";
    private const string ManagedAgentsBeta = "managed-agents-2026-04-01";
    private readonly ConcurrentDictionary<string, Caller> _cache = new(StringComparer.Ordinal);

    public async Task InvokeAsync(HttpContext context)
    {
        // Path is already percent-decoded; routing ignores case, so this must too. Only the health probe is open.
        var path = context.Request.Path.Value ?? "";
        if (string.Equals(path.TrimEnd('/'), "/healthz", StringComparison.OrdinalIgnoreCase))
        {
            await next(context);
            return;
        }

        CheckHeaders(context.Request, path);
        Caller.Set(context, Authenticate(context.Request));
        await next(context);
    }

    private static void CheckHeaders(HttpRequest request, string path)
    {
        if (string.IsNullOrWhiteSpace(request.Headers["anthropic-version"]))
        {
            throw ApiException.Invalid("anthropic-version: header is required");
        }

        // The skills endpoints are not behind the managed-agents beta (the npm SDK sends no beta header there).
        if (path.StartsWith("/v1/skills", StringComparison.OrdinalIgnoreCase))
        {
            return;
        }

        var betas = request.Headers["anthropic-beta"].ToString();
        // The memory endpoints take their own beta, or the managed-agents one.
        var memory = path.StartsWith("/v1/memory_stores", StringComparison.OrdinalIgnoreCase);
        if (memory && betas.Split(',').Any(b => b.Trim() == MemoryValues.Beta))
        {
            return;
        }

        if (!betas.Split(',').Any(b => b.Trim() == ManagedAgentsBeta))
        {
            if (memory)
            {
                throw ApiException.NotFound($"Not found. This endpoint is in beta: send the header 'anthropic-beta: {MemoryValues.Beta}'.");
            }

            throw ApiException.NotFound($"Not found. This endpoint is in beta: send the header 'anthropic-beta: {ManagedAgentsBeta}'.");
        }
    }

    private Caller Authenticate(HttpRequest request)
    {
        var apiKeyHeader = request.Headers["x-api-key"].ToString();
        var authorization = request.Headers.Authorization.ToString();
        if (apiKeyHeader.Length > 0 && authorization.Length > 0)
        {
            throw ApiException.Unauthorized("Send either x-api-key or Authorization: Bearer, not both.");
        }

        string credential;
        var bearer = false;
        if (apiKeyHeader.Length > 0)
        {
            credential = apiKeyHeader.Trim();
        }
        else if (authorization.Length > 0)
        {
            credential = BearerToken.Of(request) ?? throw ApiException.Unauthorized("Authorization header must be 'Bearer <token>'.");
            bearer = true;
        }
        else
        {
            throw ApiException.Unauthorized("x-api-key header is required (or Authorization: Bearer with an environment key or sessions token).");
        }

        var hash = Ids.Hash(credential);
        var caller = Lookup(hash);
        if (caller is null)
        {
            throw ApiException.Unauthorized("invalid x-api-key");
        }

        if (!bearer && caller.Kind != CallerKind.ApiKey)
        {
            throw ApiException.Unauthorized("Environment keys and sessions tokens are sent as Authorization: Bearer, not x-api-key.");
        }

        return caller;
    }

    private Caller? Lookup(string hash)
    {
        if (_cache.TryGetValue(hash, out var cached) && cached.Kind == CallerKind.ApiKey)
        {
            return cached; // the API key never changes while the server runs; worker credentials are re-checked (revocation)
        }

        var caller = core.Read(sql =>
        {
            if (Store.GetSetting(sql, ApiKeyHashSetting) == hash)
            {
                return new Caller(CallerKind.ApiKey);
            }

            var env = sql.Scalar<string>("SELECT environment_id FROM environment_keys WHERE key_hash=$h AND revoked_at IS NULL", ("$h", hash));
            if (env is not null)
            {
                return new Caller(CallerKind.EnvironmentKey, env);
            }

            return sql.One("SELECT environment_id, session_id, work_id FROM sessions_tokens WHERE hash=$h AND revoked=0",
                r => new Caller(CallerKind.SessionsToken, r.GetString(0), r.GetString(1), r.GetString(2)), ("$h", hash));
        });
        if (caller?.Kind == CallerKind.ApiKey)
        {
            _cache[hash] = caller;
        }

        return caller;
    }
}
