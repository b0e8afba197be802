using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/sessions</c>.</summary>
public sealed class SessionsOperations
{
    private readonly ProtocolPipeline _p;

    internal SessionsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    public Task<Session> CreateAsync(CreateSessionRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SessionsCreate) { Attributes = CreateAttributes(request) }, HttpMethod.Post, "/v1/sessions", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateSessionRequest),
            ProtocolJsonContext.Default.Session, cancellationToken, responseAttributes: CreatedAttributes);

    /// <summary>What the SDK's <c>anthropic.sessions.create</c> span starts with from the request: the agent and the environment.</summary>
    private static List<KeyValuePair<string, object?>> CreateAttributes(CreateSessionRequest request)
    {
        var attributes = new List<KeyValuePair<string, object?>>(2);
        var agent = request.Agent;
        var id = agent.ValueKind == JsonValueKind.Object && agent.TryGetProperty("id", out var inner) ? inner : agent;
        if (id.ValueKind == JsonValueKind.String)
        {
            attributes.Add(new("gen_ai.agent.id", id.GetString()));
        }

        if (!string.IsNullOrEmpty(request.EnvironmentId))
        {
            attributes.Add(new("anthropic.session.environment.id", request.EnvironmentId));
        }

        return attributes;
    }

    /// <summary>What it gets from the response: the new session's id, the agent's name, the model's id.</summary>
    private static List<KeyValuePair<string, object?>> CreatedAttributes(Session session)
    {
        var attributes = new List<KeyValuePair<string, object?>>(3);
        attributes.AddRange(ApiEndpoints.Created("anthropic.session.id", session.Id));
        if (session.Agent.Name is { Length: > 0 } name)
        {
            attributes.Add(new("gen_ai.agent.name", name));
        }

        if (session.Agent.Model is { ValueKind: JsonValueKind.Object } model && model.TryGetProperty("id", out var modelId) && modelId.ValueKind == JsonValueKind.String)
        {
            attributes.Add(new("gen_ai.request.model", modelId.GetString()));
        }

        return attributes;
    }

    public Task<Session> GetAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SessionsRetrieve, sessionId), HttpMethod.Get, $"/v1/sessions/{Query.Escape(sessionId)}", null, null,
            ProtocolJsonContext.Default.Session, cancellationToken);

    /// <summary>
    /// A page of sessions; the filters are the SDK's <c>SessionListParams</c>: <paramref name="memoryStoreId"/> keeps those
    /// with that store attached, <paramref name="agentVersion"/> those on that version, <paramref name="createdAfter"/>
    /// and <paramref name="createdBefore"/> bound <c>created_at</c> (inclusive: <c>created_at[gte]</c>, <c>[lte]</c>).
    /// </summary>
    public Task<Page<Session>> ListAsync(int? limit = null, string? page = null, string? agentId = null,
        IEnumerable<string>? statuses = null, bool? includeArchived = null, string? order = null, string? memoryStoreId = null,
        int? agentVersion = null, DateTimeOffset? createdAfter = null, DateTimeOffset? createdBefore = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.SessionsList, HttpMethod.Get, "/v1/sessions",
            new Query().With("limit", limit).With("page", page).With("agent_id", agentId).WithArray("statuses", statuses)
                .With("include_archived", includeArchived).With("order", order).With("memory_store_id", memoryStoreId)
                .With("agent_version", agentVersion).With("created_at[gte]", Rfc3339(createdAfter)).With("created_at[lte]", Rfc3339(createdBefore)), null,
            ProtocolJsonContext.Default.PageSession, cancellationToken);

    /// <summary>A page of the session's resources (on a self-hosted environment, its memory stores), in attachment order.</summary>
    public Task<Page<JsonElement>> ListResourcesAsync(string sessionId, int? limit = null, string? page = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SessionResourcesList, sessionId), HttpMethod.Get, $"/v1/sessions/{Query.Escape(sessionId)}/resources",
            new Query().With("limit", limit).With("page", page), null, ProtocolJsonContext.Default.PageJsonElement, cancellationToken);

    private static string? Rfc3339(DateTimeOffset? value) =>
        value?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture);

    public Task<Session> ArchiveAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SessionsArchive, sessionId), HttpMethod.Post, $"/v1/sessions/{Query.Escape(sessionId)}/archive", null, null,
            ProtocolJsonContext.Default.Session, cancellationToken);

    public Task<DeletedResource> DeleteAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SessionsDelete, sessionId), HttpMethod.Delete, $"/v1/sessions/{Query.Escape(sessionId)}", null, null,
            ProtocolJsonContext.Default.DeletedResource, cancellationToken);
}
