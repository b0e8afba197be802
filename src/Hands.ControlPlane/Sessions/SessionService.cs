using System.Text.Json;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Scripted;
using Hands.ControlPlane.Storage;
using Hands.ControlPlane.Work;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Sessions;

/// <summary>Sessions and their events: create, send, list, update, archive, delete; drives the agent loop.</summary>
public sealed partial class SessionService(ControlPlaneCore core, MemoryStores.MemoryStoreService memoryStores)
{
    private readonly ScriptedAgentLoop _loop = new(core.Scenarios);

    public async Task<Session> CreateAsync(Caller caller, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("create sessions");
        body.OnlyFields("agent", "environment_id", "title", "metadata", "resources", "vault_ids", "budget", "initial_events");
        var environmentId = body.RequireString("environment_id");
        var (agentId, agentVersion, overrides) = ParseAgentReference(body);
        var title = body.OptionalString("title", maxLength: 500);
        var metadata = body.OptionalMetadata("metadata");
        var resources = body.OptionalArray("resources", maxItems: 8) ?? [];
        var vaults = body.OptionalArray("vault_ids", maxItems: 20) ?? [];
        for (var i = 0; i < vaults.Count; i++)
        {
            if (vaults[i].ValueKind != JsonValueKind.String)
            {
                throw ApiException.Invalid($"vault_ids[{i}]: Input should be a valid string");
            }
        }

        var budget = ValidateBudget(body);
        var initial = body.Has("initial_events")
            ? EventValidator.Validate(body, "initial_events", 50, [EventTypes.UserMessage, EventTypes.UserDefineOutcome])
            : [];
        if (initial.Count(e => e.Type == EventTypes.UserDefineOutcome) > 1)
        {
            throw ApiException.Invalid("initial_events: at most one user.define_outcome is allowed");
        }

        return await core.WriteAsync(scope =>
        {
            var env = Store.GetEnvironment(scope.Sql, environmentId)
                ?? throw ApiException.NotFound($"environment_id: environment {environmentId} not found");
            if (env.ArchivedAt is not null)
            {
                throw ApiException.Invalid($"environment_id: environment {environmentId} is archived; it accepts no new sessions");
            }

            var mountPaths = new HashSet<string>(StringComparer.Ordinal);
            var storeIds = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < resources.Count; i++)
            {
                resources[i] = ValidateResource(scope.Sql, body, resources, i, env, mountPaths, storeIds);
            }

            var agent = Store.GetAgent(scope.Sql, agentId, agentVersion)
                ?? throw ApiException.NotFound(agentVersion is null ? $"agent: agent {agentId} not found" : $"agent: agent {agentId} has no version {agentVersion}");
            if (agent.ArchivedAt is not null)
            {
                throw ApiException.Invalid($"agent: agent {agentId} is archived");
            }

            var snapshot = Snapshot(agent, overrides);
            var session = new Session
            {
                Id = Ids.New("sesn"),
                Agent = snapshot,
                EnvironmentId = env.Id,
                Status = SessionStatus.Idle,
                Title = title,
                Metadata = metadata?.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!) ?? [],
                Resources = resources,
                VaultIds = vaults.Select(v => v.GetString()!).ToList(),
                Budget = budget,
                CreatedAt = scope.NowText,
                UpdatedAt = scope.NowText,
            };
            var loop = new LoopState();
            scope.Webhook("session.created", session.Id);
            if (env.IsSelfHosted)
            {
                WorkService.Enqueue(scope, session);
            }

            foreach (var evt in initial)
            {
                Apply(scope, env, session, loop, evt);
            }

            Store.PutSession(scope.Sql, session, loop);
            return session;
        }, ct);
    }

    private static (string Id, int? Version, JsonBody? Overrides) ParseAgentReference(JsonBody body)
    {
        if (!body.Has("agent") || body.IsNull("agent"))
        {
            throw ApiException.Invalid("agent: Field required");
        }

        var element = body.Element.GetProperty("agent");
        if (element.ValueKind == JsonValueKind.String)
        {
            var id = element.GetString()!;
            return id.Length == 0 ? throw ApiException.Invalid("agent: String should have at least 1 character") : (id, null, null);
        }

        var agent = body.RequireObject("agent");
        var type = agent.RequireString("type");
        if (type == "agent")
        {
            agent.OnlyFields("type", "id", "version");
            return (agent.RequireString("id"), agent.OptionalInt("version", 1), null);
        }

        if (type == "agent_with_overrides")
        {
            agent.OnlyFields("type", "id", "version", "model", "system", "tools", "mcp_servers", "skills");
            if (agent.Has("model") && agent.IsNull("model"))
            {
                throw ApiException.Invalid("agent.model: a session's agent needs a model (agent_model_required)");
            }

            return (agent.RequireString("id"), agent.OptionalInt("version", 1), agent);
        }

        throw ApiException.Invalid($"agent.type: Input should be 'agent' or 'agent_with_overrides', not '{type}'");
    }

    private static SessionAgent Snapshot(Agent agent, JsonBody? overrides)
    {
        var snapshot = new SessionAgent
        {
            Id = agent.Id,
            Version = agent.Version,
            Name = agent.Name,
            Description = agent.Description,
            Model = agent.Model,
            System = agent.System,
            Tools = agent.Tools,
            McpServers = agent.McpServers,
            Skills = agent.Skills,
        };
        if (overrides is null)
        {
            return snapshot;
        }

        var validated = AgentValidation.Validate(overrides, requireNameAndModel: false);
        if (validated.Model is { } model)
        {
            snapshot.Model = model;
        }

        snapshot.System = overrides.Has("system") ? validated.System : snapshot.System;
        snapshot.Tools = validated.Tools ?? snapshot.Tools;
        snapshot.McpServers = validated.McpServers ?? snapshot.McpServers;
        snapshot.Skills = validated.Skills ?? snapshot.Skills;
        return snapshot;
    }

    private static JsonElement? ValidateBudget(JsonBody body)
    {
        var budget = body.OptionalObject("budget");
        if (budget is null)
        {
            return null;
        }

        budget.OnlyFields("type", "max_list_cost");
        if (budget.RequireString("type") != "limit")
        {
            throw ApiException.Invalid("budget.type: Input should be 'limit'");
        }

        var cost = budget.RequireObject("max_list_cost");
        cost.OnlyFields("amount", "currency");
        var amount = cost.RequireString("amount");
        if (!amount.All(char.IsAsciiDigit))
        {
            throw ApiException.Invalid("budget.max_list_cost.amount: must be a whole number of cents as a string, e.g. \"2500\"");
        }

        if (cost.RequireString("currency") != "USD")
        {
            throw ApiException.Invalid("budget.max_list_cost.currency: only 'USD' is supported");
        }

        return budget.Element.Clone();
    }

    private JsonElement ValidateResource(Sql sql, JsonBody body, List<JsonElement> resources, int index, AgentEnvironment env,
        HashSet<string> mountPaths, HashSet<string> storeIds)
    {
        var resource = body.Item("resources", index, resources[index]);
        var type = resource.RequireString("type");
        if (type == "memory_store")
        {
            resource.OnlyFields("type", "memory_store_id", "access", "instructions");
            resource.RequireString("memory_store_id");
            var access = resource.OptionalString("access");
            if (access is not (null or "read_write" or "read_only"))
            {
                throw ApiException.Invalid($"{resource.Path("access")}: Input should be 'read_write' or 'read_only'");
            }

            resource.OptionalString("instructions", maxLength: 4096);
            return memoryStores.ResolveResource(sql, resource, mountPaths, storeIds);
        }

        if (env.IsSelfHosted && type is "file" or "github_repository")
        {
            throw ApiException.Invalid($"{env.Id} is a self-hosted environment. `resources` are not supported with self-hosted environments.");
        }

        throw ApiException.Invalid($"{resource.Path("type")}: unsupported resource type '{type}'");
    }

    public Session Get(Caller caller, string sessionId)
    {
        var stored = core.Read(sql => Store.GetSession(sql, sessionId)) ?? throw SessionNotFound(sessionId);
        caller.RequireSession(sessionId, stored.Session.EnvironmentId);
        return stored.Session;
    }

    public Page<Session> List(Caller caller, SessionListQuery query)
    {
        caller.RequireApiKey("list sessions");
        var ((limit, after), desc, includeArchived, agentId, statuses) = query;
        var rows = core.Read(sql =>
        {
            var where = new List<string> { "deleted_at_ms IS NULL" };
            var args = new List<(string, object?)> { ("$n", limit + 1) };
            if (!includeArchived)
            {
                where.Add("archived=0");
            }

            if (agentId.Length > 0)
            {
                where.Add("agent_id=$agent");
                args.Add(("$agent", agentId));
            }

            for (var i = 0; i < statuses.Count; i++)
            {
                args.Add(($"$st{i}", statuses[i]));
            }

            if (statuses.Count > 0)
            {
                where.Add($"status IN ({string.Join(",", statuses.Select((_, i) => $"$st{i}"))})");
            }

            if (query.AgentVersion is { } version)
            {
                where.Add("json_extract(json, '$.agent.version')=$agentVersion");
                args.Add(("$agentVersion", version));
            }

            if (query.MemoryStoreId is { } store)
            {
                where.Add("EXISTS (SELECT 1 FROM json_each(sessions.json, '$.resources') r WHERE json_extract(r.value, '$.memory_store_id')=$store)");
                args.Add(("$store", store));
            }

            for (var i = 0; i < query.CreatedAt.Count; i++)
            {
                // Stored and bound alike are Timestamps.Format's fixed-width UTC text, so text order is time order, to the microsecond.
                where.Add($"json_extract(json, '$.created_at') {query.CreatedAt[i].Comparison} $created{i}");
                args.Add(($"$created{i}", Timestamps.Format(query.CreatedAt[i].Instant)));
            }

            if (after is not null)
            {
                where.Add(desc ? "rowid < $after" : "rowid > $after");
                args.Add(("$after", after.Value));
            }

            return sql.Query($"SELECT rowid, json FROM sessions WHERE {string.Join(" AND ", where)} ORDER BY rowid {(desc ? "DESC" : "ASC")} LIMIT $n",
                r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.Session)), args.ToArray());
        });
        return Paging.ToPage(rows, limit);
    }

    public async Task<Session> UpdateAsync(Caller caller, string sessionId, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("update sessions");
        body.OnlyFields("title", "metadata", "agent", "budget");
        var title = body.OptionalString("title", maxLength: 500);
        var metadata = body.OptionalMetadata("metadata", allowNullValues: true);
        var agentPatch = body.OptionalObject("agent");
        AgentValidation.Validated? tools = null;
        if (agentPatch is not null)
        {
            agentPatch.OnlyFields("tools", "mcp_servers");
            tools = AgentValidation.Validate(agentPatch, requireNameAndModel: false);
        }

        var budget = body.Has("budget") ? ValidateBudget(body) : null;
        return await core.WriteAsync(scope =>
        {
            var stored = Store.GetSession(scope.Sql, sessionId) ?? throw SessionNotFound(sessionId);
            var session = stored.Session;
            EnsureWritable(session);
            var changed = new Dictionary<string, JsonElement>();
            if (body.Has("title"))
            {
                session.Title = title;
                changed["title"] = JsonSerializer.SerializeToElement(title, ProtocolJsonContext.Default.String);
            }

            if (metadata is not null)
            {
                foreach (var (key, value) in metadata)
                {
                    if (string.IsNullOrEmpty(value))
                    {
                        session.Metadata.Remove(key);
                    }
                    else
                    {
                        session.Metadata[key] = value;
                    }
                }

                if (session.Metadata.Count > 16)
                {
                    throw ApiException.Invalid("metadata: at most 16 key-value pairs are allowed");
                }

                changed["metadata"] = JsonSerializer.SerializeToElement(session.Metadata, ProtocolJsonContext.Default.DictionaryStringString);
            }

            if (tools is not null)
            {
                if (session.Status == SessionStatus.Running)
                {
                    throw ApiException.Conflict($"session {sessionId} is running; its agent's tools can change only while it is idle");
                }

                session.Agent.Tools = tools.Tools ?? session.Agent.Tools;
                session.Agent.McpServers = tools.McpServers ?? session.Agent.McpServers;
                changed["agent"] = JsonSerializer.SerializeToElement(session.Agent, ProtocolJsonContext.Default.SessionAgent);
            }

            if (body.Has("budget"))
            {
                session.Budget = budget;
                changed["budget"] = budget ?? JsonDocument.Parse("null").RootElement.Clone();
            }

            session.UpdatedAt = scope.NowText;
            scope.Emit(session.Id, new SessionEvent { Type = EventTypes.SessionUpdated, Extra = changed });
            scope.Webhook("session.updated", session.Id);
            Store.PutSession(scope.Sql, session, stored.Loop);
            return session;
        }, ct);
    }

    public async Task<Session> ArchiveAsync(Caller caller, string sessionId, CancellationToken ct)
    {
        caller.RequireApiKey("archive sessions");
        return await core.WriteAsync(scope =>
        {
            var stored = Store.GetSession(scope.Sql, sessionId) ?? throw SessionNotFound(sessionId);
            var session = stored.Session;
            if (session.ArchivedAt is not null)
            {
                return session;
            }

            if (session.Status == SessionStatus.Running)
            {
                throw ApiException.Conflict($"session {sessionId} is running; send a user.interrupt and wait for session.status_idle before archiving it");
            }

            session.ArchivedAt = scope.NowText;
            session.UpdatedAt = scope.NowText;
            Terminate(scope, session);
            Store.PutSession(scope.Sql, session, stored.Loop);
            return session;
        }, ct);
    }

    public async Task<DeletedResource> DeleteAsync(Caller caller, string sessionId, CancellationToken ct)
    {
        caller.RequireApiKey("delete sessions");
        return await core.WriteAsync(scope =>
        {
            var stored = Store.GetSession(scope.Sql, sessionId) ?? throw SessionNotFound(sessionId);
            if (stored.Session.Status == SessionStatus.Running)
            {
                throw ApiException.Conflict($"session {sessionId} is running; send a user.interrupt and wait for session.status_idle before deleting it");
            }

            WorkService.StopSessionWork(scope, sessionId);
            scope.Emit(sessionId, new SessionEvent { Type = EventTypes.SessionDeleted });
            scope.Webhook("session.deleted", sessionId);
            // The row stays as a tombstone so that open streams can read session.deleted and end; it is purged later.
            scope.Sql.Exec("UPDATE sessions SET deleted_at_ms=$now WHERE id=$id", ("$now", scope.NowMs), ("$id", sessionId));
            return new DeletedResource { Id = sessionId, Type = "session_deleted" };
        }, ct);
    }

    private static void Terminate(WriteScope scope, Session session)
    {
        session.Status = SessionStatus.Terminated;
        scope.Emit(session.Id, new SessionEvent { Type = EventTypes.StatusTerminated });
        scope.Webhook("session.status_terminated", session.Id);
        WorkService.StopSessionWork(scope, session.Id);
    }

    /// <summary>Validates and records events, then lets the agent loop react. All or nothing.</summary>
    public async Task<SessionEventList> SendAsync(Caller caller, string sessionId, JsonBody body, CancellationToken ct)
    {
        body.OnlyFields("events");
        var events = EventValidator.Validate(body, "events", 100);
        if (caller.IsWorker)
        {
            var forbidden = events.FirstOrDefault(e => e.Type is not (EventTypes.UserToolResult or EventTypes.UserCustomToolResult));
            if (forbidden is not null)
            {
                throw ApiException.Forbidden(
                    $"Worker credentials may send only user.tool_result and user.custom_tool_result events, not {forbidden.Type}; use the organization API key.");
            }
        }

        return await core.WriteAsync(scope =>
        {
            var stored = Store.GetSession(scope.Sql, sessionId) ?? throw SessionNotFound(sessionId);
            var session = stored.Session;
            caller.RequireSession(sessionId, session.EnvironmentId);
            EnsureWritable(session);
            var env = Store.GetEnvironment(scope.Sql, session.EnvironmentId)!;
            var echoed = new List<SessionEvent>(events.Count);
            for (var i = 0; i < events.Count; i++)
            {
                echoed.Add(Apply(scope, env, session, stored.Loop, events[i], $"events[{i}]"));
            }

            Store.PutSession(scope.Sql, session, stored.Loop);
            return new SessionEventList { Data = echoed };
        }, ct);
    }

    private static void EnsureWritable(Session session)
    {
        if (session.ArchivedAt is not null || session.Status == SessionStatus.Terminated)
        {
            throw ApiException.Invalid($"session {session.Id} is {(session.ArchivedAt is not null ? "archived" : "terminated")} and accepts no more events or changes");
        }
    }

    private SessionEvent Apply(WriteScope scope, AgentEnvironment env, Session session, LoopState loop, SessionEvent evt, string where = "initial_events")
    {
        switch (evt.Type)
        {
            case EventTypes.UserMessage:
                scope.Emit(session.Id, evt);
                _loop.OnUserMessage(scope, session, loop);
                EnsureWork(scope, env, session);
                break;
            case EventTypes.UserInterrupt:
                scope.Emit(session.Id, evt);
                _loop.OnInterrupt(scope, session, loop);
                break;
            case EventTypes.UserToolConfirmation:
            {
                var toolUse = Store.GetEvent(scope.Sql, session.Id, evt.ToolUseId!);
                if (toolUse is null || toolUse.Type != EventTypes.AgentToolUse)
                {
                    throw ApiException.Invalid($"{where}.tool_use_id: no agent.tool_use {evt.ToolUseId} in session {session.Id}");
                }

                if (toolUse.EvaluatedPermission != "ask")
                {
                    throw ApiException.Invalid($"{where}.tool_use_id: {evt.ToolUseId} was evaluated '{toolUse.EvaluatedPermission ?? "allow"}', so it takes no confirmation");
                }

                if (loop.Awaiting != evt.ToolUseId || !loop.AwaitingConfirmation)
                {
                    throw ApiException.Conflict($"{where}.tool_use_id: {evt.ToolUseId} is not waiting for a confirmation (already confirmed, answered or interrupted)");
                }

                scope.Emit(session.Id, evt);
                _loop.OnConfirmation(scope, session, loop, evt, toolUse.Name ?? "tool");
                EnsureWork(scope, env, session);
                break;
            }

            case EventTypes.UserToolResult:
            case EventTypes.UserCustomToolResult:
            {
                var isCustom = evt.Type == EventTypes.UserCustomToolResult;
                var field = isCustom ? "custom_tool_use_id" : "tool_use_id";
                var id = isCustom ? evt.CustomToolUseId! : evt.ToolUseId!;
                if (!isCustom && !env.IsSelfHosted)
                {
                    throw ApiException.Invalid($"{where}.type: user.tool_result is only valid on self_hosted environments");
                }

                var use = Store.GetEvent(scope.Sql, session.Id, id);
                var expectedType = isCustom ? EventTypes.AgentCustomToolUse : EventTypes.AgentToolUse;
                if (use is null || use.Type != expectedType)
                {
                    throw ApiException.Invalid($"{where}.{field}: no {expectedType} {id} in session {session.Id}");
                }

                if (Store.HasEventOfType(scope.Sql, session.Id, evt.Type, field, id))
                {
                    throw ApiException.Conflict($"{where}.{field}: {id} already has a result");
                }

                if (use.EvaluatedPermission == "deny")
                {
                    throw ApiException.Conflict($"{where}.{field}: {id} was denied by the permission policy; it takes no result");
                }

                if (loop.Awaiting == id && loop.AwaitingConfirmation)
                {
                    throw ApiException.Conflict($"{where}.{field}: {id} is waiting for a user.tool_confirmation; it must not run before it is allowed");
                }

                scope.Emit(session.Id, evt);
                if (loop.Awaiting == id)
                {
                    _loop.OnToolResult(scope, session, loop, evt);
                }

                break;
            }

            case EventTypes.UserDefineOutcome:
                evt.Extra ??= [];
                evt.Extra["outcome_id"] = JsonSerializer.SerializeToElement(Ids.New("outc"), ProtocolJsonContext.Default.String);
                scope.Emit(session.Id, evt);
                break;
            default:
                scope.Emit(session.Id, evt);
                break;
        }

        return evt;
    }

    private static void EnsureWork(WriteScope scope, AgentEnvironment env, Session session)
    {
        if (env.IsSelfHosted && Store.LiveWorkForSession(scope.Sql, session.Id) is null)
        {
            WorkService.Enqueue(scope, session);
        }
    }

    /// <summary>One page of events (<c>limit</c> ≤ 1000, <c>order</c> asc by default, <c>types[]</c> filter).</summary>
    public Page<SessionEvent> ListEvents(Caller caller, string sessionId, EventListQuery query)
    {
        var ((limit, after), desc, types) = query;
        return core.Read(sql =>
        {
            var stored = Store.GetSession(sql, sessionId) ?? throw SessionNotFound(sessionId);
            caller.RequireSession(sessionId, stored.Session.EnvironmentId);
            var where = new List<string> { "session_id=$s" };
            var args = new List<(string, object?)> { ("$s", sessionId), ("$n", limit + 1) };
            if (after is not null)
            {
                where.Add(desc ? "seq < $after" : "seq > $after");
                args.Add(("$after", after.Value));
            }

            for (var i = 0; i < types.Count; i++)
            {
                args.Add(($"$t{i}", types[i]));
            }

            if (types.Count > 0)
            {
                where.Add($"type IN ({string.Join(",", types.Select((_, i) => $"$t{i}"))})");
            }

            var rows = sql.Query($"SELECT seq, json FROM events WHERE {string.Join(" AND ", where)} ORDER BY seq {(desc ? "DESC" : "ASC")} LIMIT $n",
                r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.SessionEvent)), args.ToArray());
            return Paging.ToPage(rows, limit);
        });
    }

    internal static ApiException SessionNotFound(string id) => ApiException.NotFound($"session {id} not found");
}
