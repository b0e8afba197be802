using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/environments</c>.</summary>
public sealed class EnvironmentsOperations
{
    private readonly ProtocolPipeline _p;

    internal EnvironmentsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    public Task<AgentEnvironment> CreateAsync(CreateEnvironmentRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.EnvironmentsCreate, HttpMethod.Post, "/v1/environments", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateEnvironmentRequest),
            ProtocolJsonContext.Default.AgentEnvironment, cancellationToken,
            responseAttributes: static env => ApiEndpoints.Created("anthropic.environment.id", env.Id));

    public Task<AgentEnvironment> GetAsync(string environmentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.EnvironmentsRetrieve, environmentId), HttpMethod.Get, $"/v1/environments/{Query.Escape(environmentId)}", null, null,
            ProtocolJsonContext.Default.AgentEnvironment, cancellationToken);

    public Task<Page<AgentEnvironment>> ListAsync(int? limit = null, string? page = null, bool? includeArchived = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.EnvironmentsList, HttpMethod.Get, "/v1/environments",
            new Query().With("limit", limit).With("page", page).With("include_archived", includeArchived), null,
            ProtocolJsonContext.Default.PageAgentEnvironment, cancellationToken);

    public Task<AgentEnvironment> ArchiveAsync(string environmentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.EnvironmentsArchive, environmentId), HttpMethod.Post, $"/v1/environments/{Query.Escape(environmentId)}/archive", null, null,
            ProtocolJsonContext.Default.AgentEnvironment, cancellationToken);

    public Task<DeletedResource> DeleteAsync(string environmentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.EnvironmentsDelete, environmentId), HttpMethod.Delete, $"/v1/environments/{Query.Escape(environmentId)}", null, null,
            ProtocolJsonContext.Default.DeletedResource, cancellationToken);

    /// <summary>Local control plane extension: mints an environment key (shown once, stored hashed).</summary>
    public Task<EnvironmentKey> CreateKeyAsync(string environmentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.EnvironmentKeysCreate, environmentId), HttpMethod.Post, $"/v1/environments/{Query.Escape(environmentId)}/keys", null, "{}"u8.ToArray(),
            ProtocolJsonContext.Default.EnvironmentKey, cancellationToken);
}
