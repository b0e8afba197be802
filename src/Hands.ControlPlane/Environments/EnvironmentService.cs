using System.Text.Json;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Environments;

/// <summary>
/// Environments, and the local extension that mints environment keys (Anthropic makes them only in its Console).
/// The local control plane runs no cloud sandboxes, so it accepts only <c>self_hosted</c> environments.
/// </summary>
public sealed class EnvironmentService(ControlPlaneCore core)
{
    /// <summary>Environment keys look like the Console's (<c>sk-ant-oat01-...</c>).</summary>
    public const string KeyPrefix = "sk-ant-oat01-";

    public async Task<AgentEnvironment> CreateAsync(Caller caller, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("create environments");
        body.OnlyFields("name", "config", "description", "metadata", "scope");
        var name = body.RequireString("name", 1, 256);
        var config = ValidateConfig(body);
        var description = body.OptionalString("description", maxLength: 2048);
        var metadata = body.OptionalMetadata("metadata");
        var scopeValue = body.OptionalString("scope");
        if (scopeValue is not (null or "organization" or "account"))
        {
            throw ApiException.Invalid("scope: Input should be 'organization' or 'account'");
        }

        return await core.WriteAsync(scope =>
        {
            var env = new AgentEnvironment
            {
                Id = Ids.New("env"),
                Name = name,
                Description = description,
                Config = config,
                Metadata = metadata?.ToDictionary(p => p.Key, p => p.Value!) ?? [],
                Scope = scopeValue,
                CreatedAt = scope.NowText,
                UpdatedAt = scope.NowText,
            };
            Store.PutEnvironment(scope.Sql, env);
            return env;
        }, ct);
    }

    private static JsonElement ValidateConfig(JsonBody body)
    {
        var config = body.OptionalObject("config");
        if (config is null)
        {
            using var doc = JsonDocument.Parse("""{"type":"self_hosted"}""");
            return doc.RootElement.Clone();
        }

        var type = config.RequireString("type");
        if (type == "self_hosted")
        {
            config.OnlyFields("type");
            return config.Element.Clone();
        }

        if (type == "cloud")
        {
            throw ApiException.Invalid("config.type: the local control plane runs no cloud sandboxes; create a 'self_hosted' environment and run Hands' orchestrator or a worker for it");
        }

        throw ApiException.Invalid($"config.type: Input should be 'self_hosted' or 'cloud', not '{type}'");
    }

    public AgentEnvironment Get(Caller caller, string environmentId)
    {
        var env = core.Read(sql => Store.GetEnvironment(sql, environmentId)) ?? throw NotFound(environmentId);
        caller.RequireEnvironment(environmentId);
        return env;
    }

    public Page<AgentEnvironment> List(Caller caller, ArchivableListQuery query)
    {
        caller.RequireApiKey("list environments");
        var (limit, after) = query.Page;
        var includeArchived = query.IncludeArchived;
        var rows = core.Read(sql => sql.Query(
            "SELECT rowid, json FROM environments WHERE ($all=1 OR archived=0) AND ($after IS NULL OR rowid < $after) ORDER BY rowid DESC LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.AgentEnvironment)),
            ("$all", includeArchived ? 1 : 0), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    public async Task<AgentEnvironment> UpdateAsync(Caller caller, string environmentId, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("update environments");
        body.OnlyFields("name", "description", "metadata", "config");
        var name = body.OptionalString("name", 1, 256);
        var description = body.OptionalString("description", maxLength: 2048);
        var metadata = body.OptionalMetadata("metadata", allowNullValues: true);
        JsonElement? config = body.Has("config") ? ValidateConfig(body) : null;
        return await core.WriteAsync(scope =>
        {
            var env = Store.GetEnvironment(scope.Sql, environmentId) ?? throw NotFound(environmentId);
            if (env.ArchivedAt is not null)
            {
                throw ApiException.Invalid($"environment {environmentId} is archived (read-only)");
            }

            env.Name = name ?? env.Name;
            env.Description = body.Has("description") ? description : env.Description;
            env.Config = config ?? env.Config;
            foreach (var (key, value) in metadata ?? [])
            {
                if (string.IsNullOrEmpty(value))
                {
                    env.Metadata.Remove(key);
                }
                else
                {
                    env.Metadata[key] = value;
                }
            }

            env.UpdatedAt = scope.NowText;
            Store.PutEnvironment(scope.Sql, env);
            return env;
        }, ct);
    }

    public async Task<AgentEnvironment> ArchiveAsync(Caller caller, string environmentId, CancellationToken ct)
    {
        caller.RequireApiKey("archive environments");
        return await core.WriteAsync(scope =>
        {
            var env = Store.GetEnvironment(scope.Sql, environmentId) ?? throw NotFound(environmentId);
            if (env.ArchivedAt is null)
            {
                env.ArchivedAt = scope.NowText;
                env.UpdatedAt = scope.NowText;
                Store.PutEnvironment(scope.Sql, env);
            }

            return env;
        }, ct);
    }

    public async Task<DeletedResource> DeleteAsync(Caller caller, string environmentId, CancellationToken ct)
    {
        caller.RequireApiKey("delete environments");
        return await core.WriteAsync(scope =>
        {
            _ = Store.GetEnvironment(scope.Sql, environmentId) ?? throw NotFound(environmentId);
            var sessions = scope.Sql.Scalar<long>("SELECT COUNT(*) FROM sessions WHERE environment_id=$e AND deleted_at_ms IS NULL", ("$e", environmentId));
            if (sessions > 0)
            {
                throw ApiException.Conflict($"environment {environmentId} is referenced by {sessions} session(s); delete them first or archive the environment");
            }

            scope.Sql.Exec("DELETE FROM environment_keys WHERE environment_id=$e", ("$e", environmentId));
            scope.Sql.Exec("DELETE FROM work WHERE environment_id=$e", ("$e", environmentId));
            scope.Sql.Exec("DELETE FROM environments WHERE id=$e", ("$e", environmentId));
            return new DeletedResource { Id = environmentId, Type = "environment_deleted" };
        }, ct);
    }

    /// <summary>Mints a key for the environment. The key is returned once; only its SHA-256 is stored.</summary>
    public async Task<EnvironmentKey> CreateKeyAsync(Caller caller, string environmentId, CancellationToken ct)
    {
        caller.RequireApiKey("create environment keys");
        return await core.WriteAsync(scope =>
        {
            var env = Store.GetEnvironment(scope.Sql, environmentId) ?? throw NotFound(environmentId);
            if (env.ArchivedAt is not null)
            {
                throw ApiException.Invalid($"environment {environmentId} is archived");
            }

            var key = new EnvironmentKey { Id = Ids.New("envkey"), EnvironmentId = environmentId, Key = Ids.Secret(KeyPrefix), CreatedAt = scope.NowText };
            scope.Sql.Exec("INSERT INTO environment_keys(id,environment_id,key_hash,created_at) VALUES($id,$e,$h,$c)",
                ("$id", key.Id), ("$e", environmentId), ("$h", Ids.Hash(key.Key)), ("$c", key.CreatedAt));
            return key;
        }, ct);
    }

    /// <summary>Revokes a key; every later request with it is a 401.</summary>
    public async Task<DeletedResource> RevokeKeyAsync(Caller caller, string environmentId, string keyId, CancellationToken ct)
    {
        caller.RequireApiKey("revoke environment keys");
        return await core.WriteAsync(scope =>
        {
            var n = scope.Sql.Exec("UPDATE environment_keys SET revoked_at=$now WHERE id=$id AND environment_id=$e AND revoked_at IS NULL",
                ("$now", scope.NowText), ("$id", keyId), ("$e", environmentId));
            return n == 0
                ? throw ApiException.NotFound($"environment key {keyId} not found (or already revoked) in environment {environmentId}")
                : new DeletedResource { Id = keyId, Type = "environment_key_revoked" };
        }, ct);
    }

    internal static ApiException NotFound(string id) => ApiException.NotFound($"environment {id} not found");
}
