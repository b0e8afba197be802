using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/environments/{id}/work</c>: the self-hosted environment's work queue.</summary>
public sealed class WorkOperations
{
    /// <summary>The value of <c>expected_last_heartbeat</c> that claims a lease nobody holds yet.</summary>
    public const string NoHeartbeat = "NO_HEARTBEAT";

    private readonly ProtocolPipeline _p;

    internal WorkOperations(ProtocolPipeline pipeline) => _p = pipeline;

    private static string Base(string environmentId) => $"/v1/environments/{Query.Escape(environmentId)}/work";

    /// <summary>
    /// Claims the next item, or returns null when the queue is empty. <paramref name="blockMs"/> (1-999) long-polls;
    /// null is non-blocking. Both empty-poll wire forms (200 + <c>null</c>, and 204) are accepted. With
    /// <paramref name="retry"/> false the client's retry policy is skipped, for a poll loop that retries on its own.
    /// </summary>
    public async Task<WorkItem?> PollAsync(string environmentId, int? blockMs = 999, int? reclaimOlderThanMs = null,
        string? workerId = null, CancellationToken cancellationToken = default, bool retry = true)
    {
        var headers = workerId is null ? null : new Dictionary<string, string> { ["Anthropic-Worker-ID"] = workerId };
        var text = await _p.SendForTextAsync(new ApiCall(ApiEndpoints.WorkPoll, environmentId), HttpMethod.Get, $"{Base(environmentId)}/poll",
            new Query().With("block_ms", blockMs).With("reclaim_older_than_ms", reclaimOlderThanMs), null,
            cancellationToken, headers: headers, retry: retry).ConfigureAwait(false);
        if (string.IsNullOrWhiteSpace(text) || text.Trim() == "null")
        {
            return null;
        }

        var item = JsonSerializer.Deserialize(text, ProtocolJsonContext.Default.WorkItem);
        return item is null || string.IsNullOrEmpty(item.Id) ? null : item;
    }

    public Task<WorkItem> AckAsync(string environmentId, string workId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkAck, environmentId, workId), HttpMethod.Post, $"{Base(environmentId)}/{Query.Escape(workId)}/ack", null, null,
            ProtocolJsonContext.Default.WorkItem, cancellationToken);

    /// <summary>
    /// Extends (or with <see cref="NoHeartbeat"/> claims) the lease. A 412 throws
    /// <see cref="HeartbeatPreconditionFailedException"/> with the server's view of the lease.
    /// </summary>
    public Task<WorkHeartbeat> HeartbeatAsync(string environmentId, string workId, string expectedLastHeartbeat,
        int? desiredTtlSeconds = null, TimeSpan? timeout = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkHeartbeat, environmentId, workId), HttpMethod.Post, $"{Base(environmentId)}/{Query.Escape(workId)}/heartbeat",
            new Query().With("expected_last_heartbeat", expectedLastHeartbeat).With("desired_ttl_seconds", desiredTtlSeconds), null,
            ProtocolJsonContext.Default.WorkHeartbeat, cancellationToken, timeout: timeout);

    /// <summary>
    /// Asks the item to stop (<paramref name="force"/> stops it at once). The real service answers 204 with no body;
    /// the body, if any, is ignored. Returns false when the item was already stopped (409).
    /// </summary>
    public async Task<bool> StopAsync(string environmentId, string workId, bool force, CancellationToken cancellationToken = default)
    {
        var body = ProtocolPipeline.Serialize(new StopWorkRequest { Force = force }, ProtocolJsonContext.Default.StopWorkRequest);
        try
        {
            await _p.SendForTextAsync(new ApiCall(ApiEndpoints.WorkStop, environmentId, workId), HttpMethod.Post,
                $"{Base(environmentId)}/{Query.Escape(workId)}/stop", null, body, cancellationToken).ConfigureAwait(false);
            return true;
        }
        catch (ManagedAgentsException ex) when (ex.Status == 409)
        {
            return false;
        }
    }

    public Task<WorkItem> GetAsync(string environmentId, string workId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkRetrieve, environmentId, workId), HttpMethod.Get, $"{Base(environmentId)}/{Query.Escape(workId)}", null, null,
            ProtocolJsonContext.Default.WorkItem, cancellationToken);

    public Task<Page<WorkItem>> ListAsync(string environmentId, int? limit = null, string? page = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkList, environmentId), HttpMethod.Get, Base(environmentId), new Query().With("limit", limit).With("page", page), null,
            ProtocolJsonContext.Default.PageWorkItem, cancellationToken);

    public Task<WorkItem> UpdateAsync(string environmentId, string workId, UpdateWorkRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkUpdate, environmentId, workId), HttpMethod.Post, $"{Base(environmentId)}/{Query.Escape(workId)}", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.UpdateWorkRequest),
            ProtocolJsonContext.Default.WorkItem, cancellationToken);

    public Task<WorkQueueStats> StatsAsync(string environmentId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WorkStats, environmentId), HttpMethod.Get, $"{Base(environmentId)}/stats", null, null,
            ProtocolJsonContext.Default.WorkQueueStats, cancellationToken);
}
