using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Agents;

/// <summary>Agents: create, get (any version), list, update (a new version each time), archive.</summary>
public sealed class AgentService(ControlPlaneCore core)
{
    public async Task<Agent> CreateAsync(Caller caller, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("create agents");
        body.OnlyFields("name", "model", "system", "description", "tools", "mcp_servers", "skills", "metadata", "multiagent");
        var v = AgentValidation.Validate(body, requireNameAndModel: true);
        return await core.WriteAsync(scope =>
        {
            CheckSkillsExist(scope.Sql, v.Skills);
            var agent = new Agent
            {
                Id = Ids.New("agent"),
                Version = 1,
                Name = v.Name!,
                Description = v.Description,
                Model = v.Model!.Value,
                System = v.System,
                Tools = v.Tools ?? [],
                McpServers = v.McpServers ?? [],
                Skills = v.Skills ?? [],
                Metadata = v.Metadata?.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!) ?? [],
                CreatedAt = scope.NowText,
                UpdatedAt = scope.NowText,
            };
            Store.PutAgentVersion(scope.Sql, agent);
            return agent;
        }, ct);
    }

    private static void CheckSkillsExist(Sql sql, List<AgentSkill>? skills)
    {
        foreach (var skill in skills ?? [])
        {
            if (skill.Type == "custom" && sql.Scalar<long>("SELECT COUNT(*) FROM skills WHERE id=$id", ("$id", skill.SkillId)) == 0)
            {
                throw ApiException.Invalid($"skills: skill {skill.SkillId} not found");
            }
        }
    }

    /// <summary>The agent's latest version, or <paramref name="version"/>.</summary>
    public Agent Get(Caller caller, string agentId, int? version)
    {
        caller.RequireApiKey("read agents");
        return core.Read(sql => Store.GetAgent(sql, agentId, version))
            ?? throw ApiException.NotFound(version is null ? $"agent {agentId} not found" : $"agent {agentId} has no version {version}");
    }

    public Page<Agent> List(Caller caller, ArchivableListQuery query)
    {
        caller.RequireApiKey("list agents");
        var (limit, after) = query.Page;
        var includeArchived = query.IncludeArchived;
        var rows = core.Read(sql => sql.Query(
            "SELECT a.rowid, v.json FROM agents a JOIN agent_versions v ON v.agent_id=a.id AND v.version=a.version " +
            "WHERE ($all=1 OR a.archived=0) AND ($after IS NULL OR a.rowid < $after) ORDER BY a.rowid DESC LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.Agent)),
            ("$all", includeArchived ? 1 : 0), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    public async Task<Agent> UpdateAsync(Caller caller, string agentId, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("update agents");
        body.OnlyFields("name", "model", "system", "description", "tools", "mcp_servers", "skills", "metadata", "multiagent", "version");
        var expectedVersion = body.OptionalInt("version", 1);
        var v = AgentValidation.Validate(body, requireNameAndModel: false);
        return await core.WriteAsync(scope =>
        {
            var current = Store.GetAgent(scope.Sql, agentId) ?? throw ApiException.NotFound($"agent {agentId} not found");
            if (current.ArchivedAt is not null)
            {
                throw ApiException.Invalid($"agent {agentId} is archived and cannot be updated");
            }

            if (expectedVersion is not null && expectedVersion != current.Version)
            {
                throw ApiException.Conflict($"version: agent {agentId} is at version {current.Version}, not {expectedVersion}; re-read it and retry");
            }

            CheckSkillsExist(scope.Sql, v.Skills);
            var next = Store.Deserialize(Store.Serialize(current, ProtocolJsonContext.Default.Agent), ProtocolJsonContext.Default.Agent);
            next.Version = current.Version + 1;
            next.Name = v.Name ?? next.Name;
            next.Model = v.Model ?? next.Model;
            next.System = body.Has("system") ? v.System : next.System;
            next.Description = body.Has("description") ? v.Description : next.Description;
            next.Tools = v.Tools ?? next.Tools;
            next.McpServers = v.McpServers ?? next.McpServers;
            next.Skills = v.Skills ?? next.Skills;
            foreach (var (key, value) in v.Metadata ?? [])
            {
                if (string.IsNullOrEmpty(value))
                {
                    next.Metadata.Remove(key);
                }
                else
                {
                    next.Metadata[key] = value;
                }
            }

            next.UpdatedAt = scope.NowText;
            Store.PutAgentVersion(scope.Sql, next);
            return next;
        }, ct);
    }

    public async Task<Agent> ArchiveAsync(Caller caller, string agentId, CancellationToken ct)
    {
        caller.RequireApiKey("archive agents");
        return await core.WriteAsync(scope =>
        {
            var agent = Store.GetAgent(scope.Sql, agentId) ?? throw ApiException.NotFound($"agent {agentId} not found");
            if (agent.ArchivedAt is null)
            {
                agent.ArchivedAt = scope.NowText;
                agent.UpdatedAt = scope.NowText;
                Store.PutAgentVersion(scope.Sql, agent);
            }

            return agent;
        }, ct);
    }
}
