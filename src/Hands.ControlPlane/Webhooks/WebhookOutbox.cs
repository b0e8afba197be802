using System.Text.Json;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Webhooks;

/// <summary>
/// Durable queue of webhook deliveries, written in the same transaction as the change they announce, so an event is
/// announced if and only if it happened, and a restart loses no pending delivery.
/// </summary>
public static class WebhookOutbox
{
    /// <summary>Queues one delivery per enabled endpoint subscribed to <paramref name="type"/>; returns how many.</summary>
    public static int Enqueue(Sql sql, string type, string resourceId, DateTimeOffset now)
    {
        var endpoints = sql.Query("SELECT id, json FROM webhook_endpoints",
            r => (r.GetString(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.WebhookEndpoint)));
        var matching = endpoints.Where(e => e.Item2.DisabledAt is null && (e.Item2.EventTypes.Count == 0 || e.Item2.EventTypes.Contains(type))).ToList();
        if (matching.Count == 0)
        {
            return 0; // events emitted while no endpoint subscribes are never delivered
        }

        var organization = Store.GetSetting(sql, "organization_id") ?? "org_local";
        var workspace = Store.GetSetting(sql, "workspace_id") ?? "wrkspc_local";
        var payload = new WebhookEvent
        {
            Id = Ids.New("whe"),
            CreatedAt = Timestamps.Format(now),
            Data = new WebhookEventData { Type = type, Id = resourceId, OrganizationId = organization, WorkspaceId = workspace },
        };
        var body = JsonSerializer.Serialize(payload, ProtocolJsonContext.Default.WebhookEvent);
        foreach (var (endpointId, _) in matching)
        {
            sql.Exec("INSERT INTO webhook_outbox(id,endpoint_id,body,attempts,next_attempt_ms) VALUES($id,$e,$b,0,$t)",
                ("$id", payload.Id), ("$e", endpointId), ("$b", body), ("$t", now.ToUnixTimeMilliseconds()));
        }

        return matching.Count;
    }
}
