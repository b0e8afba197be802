using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/sessions</c>.</summary>
public sealed class SessionsOperations
{
    private readonly ProtocolPipeline _p;

    internal SessionsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    public Task<Session> CreateAsync(CreateSessionRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Post, "/v1/sessions", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateSessionRequest),
            ProtocolJsonContext.Default.Session, cancellationToken);

    public Task<Session> GetAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Get, $"/v1/sessions/{Query.Escape(sessionId)}", null, null,
            ProtocolJsonContext.Default.Session, cancellationToken);

    public Task<Page<Session>> ListAsync(int? limit = null, string? page = null, string? agentId = null,
        IEnumerable<string>? statuses = null, bool? includeArchived = null, string? order = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Get, "/v1/sessions",
            new Query().With("limit", limit).With("page", page).With("agent_id", agentId).WithArray("statuses", statuses)
                .With("include_archived", includeArchived).With("order", order), null,
            ProtocolJsonContext.Default.PageSession, cancellationToken);

    public Task<Session> ArchiveAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Post, $"/v1/sessions/{Query.Escape(sessionId)}/archive", null, null,
            ProtocolJsonContext.Default.Session, cancellationToken);

    public Task<DeletedResource> DeleteAsync(string sessionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Delete, $"/v1/sessions/{Query.Escape(sessionId)}", null, null,
            ProtocolJsonContext.Default.DeletedResource, cancellationToken);
}
