using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Work;

/// <summary>
/// A poll: wait up to <paramref name="BlockMs"/> (null: answer at once), reclaim items claimed longer than
/// <paramref name="ReclaimOlderThanMs"/> ago (null: the server's default), from the worker <paramref name="WorkerId"/>
/// reaching the server at <paramref name="BaseUrl"/>.
/// </summary>
public sealed record WorkPollQuery(int? BlockMs, int? ReclaimOlderThanMs, string WorkerId, string BaseUrl)
{
    public static WorkPollQuery From(HttpRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var blockMs = QueryValues.OptionalInt(request.Query, "block_ms");
        if (blockMs is < 1 or > 999)
        {
            throw ApiException.Invalid($"block_ms: must be between 1 and 999 (omit it for a non-blocking poll), not {blockMs}");
        }

        var reclaimMs = QueryValues.OptionalInt(request.Query, "reclaim_older_than_ms");
        if (reclaimMs < 1)
        {
            throw ApiException.Invalid("reclaim_older_than_ms: must be at least 1");
        }

        return new(blockMs, reclaimMs, request.Headers["Anthropic-Worker-ID"].ToString(), $"{request.Scheme}://{request.Host}");
    }
}
