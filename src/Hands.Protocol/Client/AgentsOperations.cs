using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/agents</c>.</summary>
public sealed class AgentsOperations
{
    private readonly ProtocolPipeline _p;

    internal AgentsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    public Task<Agent> CreateAsync(CreateAgentRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.AgentsCreate, HttpMethod.Post, "/v1/agents", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateAgentRequest),
            ProtocolJsonContext.Default.Agent, cancellationToken,
            responseAttributes: static agent => ApiEndpoints.Created("gen_ai.agent.id", agent.Id));

    public Task<Agent> GetAsync(string agentId, int? version = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.AgentsRetrieve, agentId), HttpMethod.Get, $"/v1/agents/{Query.Escape(agentId)}", new Query().With("version", version), null,
            ProtocolJsonContext.Default.Agent, cancellationToken);

    public Task<Agent> UpdateAsync(string agentId, CreateAgentRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.AgentsUpdate, agentId), HttpMethod.Post, $"/v1/agents/{Query.Escape(agentId)}", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateAgentRequest),
            ProtocolJsonContext.Default.Agent, cancellationToken);

    public Task<Page<Agent>> ListAsync(int? limit = null, string? page = null, bool? includeArchived = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.AgentsList, HttpMethod.Get, "/v1/agents",
            new Query().With("limit", limit).With("page", page).With("include_archived", includeArchived), null,
            ProtocolJsonContext.Default.PageAgent, cancellationToken);

    public Task<Agent> ArchiveAsync(string agentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.AgentsArchive, agentId), HttpMethod.Post, $"/v1/agents/{Query.Escape(agentId)}/archive", null, null,
            ProtocolJsonContext.Default.Agent, cancellationToken);
}
