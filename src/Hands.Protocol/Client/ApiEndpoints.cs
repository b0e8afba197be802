namespace Hands.Protocol.Client;

/// <summary>
/// Every endpoint this client calls, named, routed and with the query parameters the official TypeScript SDK (1.14.0,
/// <c>src/resources/beta/**</c>) declares for its span, so a backend shows Hands' calls as it shows the SDK's. The local
/// control plane's own endpoints (environment keys, webhook endpoints) have no official name: they are
/// <c>hands.*</c>, in the same style.
/// </summary>
internal static class ApiEndpoints
{
    private const string Env = "anthropic.environment.id";
    private const string Work = "anthropic.environment.work.id";
    private const string Session = "anthropic.session.id";
    private const string Agent = "gen_ai.agent.id";
    private const string Skill = "anthropic.skill.id";
    private const string SkillVersion = "anthropic.skill.version.id";
    private const string MemoryStore = "gen_ai.memory.store.id";
    private const string MemoryRecord = "gen_ai.memory.record.id";

    public static readonly ApiEndpoint EnvironmentsCreate = new("anthropic.environments.create", "/v1/environments");
    public static readonly ApiEndpoint EnvironmentsRetrieve = new("anthropic.environments.retrieve", "/v1/environments/{environment_id}", [Env]);
    public static readonly ApiEndpoint EnvironmentsList = new("anthropic.environments.list", "/v1/environments", queryParams: ["include_archived", "limit", "page"]);
    public static readonly ApiEndpoint EnvironmentsArchive = new("anthropic.environments.archive", "/v1/environments/{environment_id}/archive", [Env]);
    public static readonly ApiEndpoint EnvironmentsDelete = new("anthropic.environments.delete", "/v1/environments/{environment_id}", [Env]);
    public static readonly ApiEndpoint EnvironmentKeysCreate = new("hands.environments.keys.create", "/v1/environments/{environment_id}/keys", [Env]);

    public static readonly ApiEndpoint WorkPoll = new("anthropic.environments.work.poll", "/v1/environments/{environment_id}/work/poll", [Env], ["block_ms", "reclaim_older_than_ms"]);
    public static readonly ApiEndpoint WorkAck = new("anthropic.environments.work.ack", "/v1/environments/{environment_id}/work/{work_id}/ack", [Env, Work]);
    public static readonly ApiEndpoint WorkHeartbeat = new("anthropic.environments.work.heartbeat", "/v1/environments/{environment_id}/work/{work_id}/heartbeat", [Env, Work],
        ["desired_ttl_seconds", "expected_last_heartbeat"]);
    public static readonly ApiEndpoint WorkStop = new("anthropic.environments.work.stop", "/v1/environments/{environment_id}/work/{work_id}/stop", [Env, Work]);
    public static readonly ApiEndpoint WorkRetrieve = new("anthropic.environments.work.retrieve", "/v1/environments/{environment_id}/work/{work_id}", [Env, Work]);
    public static readonly ApiEndpoint WorkUpdate = new("anthropic.environments.work.update", "/v1/environments/{environment_id}/work/{work_id}", [Env, Work]);
    public static readonly ApiEndpoint WorkList = new("anthropic.environments.work.list", "/v1/environments/{environment_id}/work", [Env], ["limit", "page"]);
    public static readonly ApiEndpoint WorkStats = new("anthropic.environments.work.stats", "/v1/environments/{environment_id}/work/stats", [Env]);

    public static readonly ApiEndpoint AgentsCreate = new("anthropic.agents.create", "/v1/agents");
    public static readonly ApiEndpoint AgentsRetrieve = new("anthropic.agents.retrieve", "/v1/agents/{agent_id}", [Agent], ["version"]);
    public static readonly ApiEndpoint AgentsUpdate = new("anthropic.agents.update", "/v1/agents/{agent_id}", [Agent]);
    public static readonly ApiEndpoint AgentsList = new("anthropic.agents.list", "/v1/agents",
        queryParams: ["created_at[gte]", "created_at[lte]", "include_archived", "limit", "page"]);
    public static readonly ApiEndpoint AgentsArchive = new("anthropic.agents.archive", "/v1/agents/{agent_id}/archive", [Agent]);

    public static readonly ApiEndpoint SessionsCreate = new("anthropic.sessions.create", "/v1/sessions");
    public static readonly ApiEndpoint SessionsRetrieve = new("anthropic.sessions.retrieve", "/v1/sessions/{session_id}", [Session]);
    public static readonly ApiEndpoint SessionsList = new("anthropic.sessions.list", "/v1/sessions", queryParams:
    [
        "agent_id", "agent_version", "created_at[gt]", "created_at[gte]", "created_at[lt]", "created_at[lte]", "deployment_id",
        "include_archived", "limit", "memory_store_id", "order", "page", "statuses",
    ]);
    public static readonly ApiEndpoint SessionResourcesList = new("anthropic.sessions.resources.list", "/v1/sessions/{session_id}/resources", [Session],
        ["limit", "page"]);
    public static readonly ApiEndpoint SessionsArchive = new("anthropic.sessions.archive", "/v1/sessions/{session_id}/archive", [Session]);
    public static readonly ApiEndpoint SessionsDelete = new("anthropic.sessions.delete", "/v1/sessions/{session_id}", [Session]);

    public static readonly ApiEndpoint EventsList = new("anthropic.sessions.events.list", "/v1/sessions/{session_id}/events", [Session],
        ["created_at[gt]", "created_at[gte]", "created_at[lt]", "created_at[lte]", "limit", "order", "page", "types"]);
    public static readonly ApiEndpoint EventsSend = new("anthropic.sessions.events.send", "/v1/sessions/{session_id}/events", [Session]);
    public static readonly ApiEndpoint EventsStream = new("anthropic.sessions.events.stream", "/v1/sessions/{session_id}/events/stream", [Session], ["event_deltas"]);

    public static readonly ApiEndpoint MemoryStoresCreate = new("anthropic.memory_stores.create", "/v1/memory_stores");
    public static readonly ApiEndpoint MemoryStoresRetrieve = new("anthropic.memory_stores.retrieve", "/v1/memory_stores/{memory_store_id}", [MemoryStore]);
    public static readonly ApiEndpoint MemoryStoresUpdate = new("anthropic.memory_stores.update", "/v1/memory_stores/{memory_store_id}", [MemoryStore]);
    public static readonly ApiEndpoint MemoryStoresList = new("anthropic.memory_stores.list", "/v1/memory_stores", queryParams: ["include_archived", "limit", "page"]);
    public static readonly ApiEndpoint MemoryStoresArchive = new("anthropic.memory_stores.archive", "/v1/memory_stores/{memory_store_id}/archive", [MemoryStore]);
    public static readonly ApiEndpoint MemoryStoresDelete = new("anthropic.memory_stores.delete", "/v1/memory_stores/{memory_store_id}", [MemoryStore]);
    public static readonly ApiEndpoint MemoriesList = new("anthropic.memory_stores.memories.list", "/v1/memory_stores/{memory_store_id}/memories", [MemoryStore],
        ["depth", "limit", "page", "path_prefix", "view"]);
    public static readonly ApiEndpoint MemoriesRetrieve = new("anthropic.memory_stores.memories.retrieve", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
        [MemoryStore, MemoryRecord], ["view"]);
    public static readonly ApiEndpoint MemoriesCreate = new("anthropic.memory_stores.memories.create", "/v1/memory_stores/{memory_store_id}/memories", [MemoryStore], ["view"]);
    public static readonly ApiEndpoint MemoriesUpdate = new("anthropic.memory_stores.memories.update", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
        [MemoryStore, MemoryRecord], ["view"]);
    public static readonly ApiEndpoint MemoriesDelete = new("anthropic.memory_stores.memories.delete", "/v1/memory_stores/{memory_store_id}/memories/{memory_id}",
        [MemoryStore, MemoryRecord], ["expected_content_sha256"]);
    public static readonly ApiEndpoint MemoryVersionsList = new("anthropic.memory_stores.memory_versions.list", "/v1/memory_stores/{memory_store_id}/memory_versions",
        [MemoryStore], ["limit", "memory_id", "page", "view"]);
    public static readonly ApiEndpoint MemoryVersionsRetrieve = new("anthropic.memory_stores.memory_versions.retrieve",
        "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}", [MemoryStore], ["view"]);
    public static readonly ApiEndpoint MemoryVersionsRedact = new("anthropic.memory_stores.memory_versions.redact",
        "/v1/memory_stores/{memory_store_id}/memory_versions/{memory_version_id}/redact", [MemoryStore]);

    public static readonly ApiEndpoint SkillsCreate = new("anthropic.skills.create", "/v1/skills");
    public static readonly ApiEndpoint SkillsRetrieve = new("anthropic.skills.retrieve", "/v1/skills/{skill_id}", [Skill]);
    public static readonly ApiEndpoint SkillVersionsCreate = new("anthropic.skills.versions.create", "/v1/skills/{skill_id}/versions", [Skill]);
    public static readonly ApiEndpoint SkillVersionsList = new("anthropic.skills.versions.list", "/v1/skills/{skill_id}/versions", [Skill], ["limit", "page"]);
    public static readonly ApiEndpoint SkillVersionsRetrieve = new("anthropic.skills.versions.retrieve", "/v1/skills/{skill_id}/versions/{version}", [Skill, SkillVersion]);
    public static readonly ApiEndpoint SkillVersionsDownload = new("anthropic.skills.versions.download", "/v1/skills/{skill_id}/versions/{version}/content", [Skill, SkillVersion]);

    public static readonly ApiEndpoint WebhookEndpointsCreate = new("hands.webhook_endpoints.create", "/v1/webhook_endpoints");
    public static readonly ApiEndpoint WebhookEndpointsList = new("hands.webhook_endpoints.list", "/v1/webhook_endpoints");
    public static readonly ApiEndpoint WebhookEndpointsDelete = new("hands.webhook_endpoints.delete", "/v1/webhook_endpoints/{webhook_endpoint_id}", ["hands.webhook_endpoint.id"]);

    /// <summary>The attribute a create's span gets from its response: the new object's id (the SDK's <c>createdIDAttribute</c>).</summary>
    public static IEnumerable<KeyValuePair<string, object?>> Created(string attribute, string? id) =>
        string.IsNullOrEmpty(id) ? [] : [new(attribute, id)];
}
