using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Work;

/// <summary>A heartbeat: the lease it continues (<c>NO_HEARTBEAT</c> to claim), and the lease length it asks for (null: keep).</summary>
public sealed record HeartbeatQuery(string ExpectedLastHeartbeat, int? DesiredTtlSeconds)
{
    public static HeartbeatQuery From(IQueryCollection query)
    {
        ArgumentNullException.ThrowIfNull(query);
        var expected = query["expected_last_heartbeat"].ToString();
        if (expected.Length == 0)
        {
            throw ApiException.Invalid("expected_last_heartbeat: Field required (NO_HEARTBEAT for the first heartbeat, then the last_heartbeat of the previous answer)");
        }

        var desired = QueryValues.OptionalInt(query, "desired_ttl_seconds");
        if (desired is < 1)
        {
            throw ApiException.Invalid("desired_ttl_seconds: must be at least 1");
        }

        return new(expected, desired);
    }
}
