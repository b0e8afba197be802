using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A webhook delivery payload (thin: fetch the resource yourself).</summary>
public sealed class WebhookEvent
{
    [JsonPropertyName("type")] public string Type { get; set; } = "event";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
    [JsonPropertyName("data")] public WebhookEventData Data { get; set; } = new();
}

/// <summary>The <c>data</c> of a webhook delivery: which event, on which resource.</summary>
public sealed class WebhookEventData
{
    [JsonPropertyName("type")] public string Type { get; set; } = "";
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("organization_id")] public string OrganizationId { get; set; } = "";
    [JsonPropertyName("workspace_id")] public string WorkspaceId { get; set; } = "";
}

/// <summary>
/// A registered webhook endpoint. Anthropic registers these in its Console; the local control plane has the
/// extension endpoint <c>POST /v1/webhook_endpoints</c>. <see cref="Secret"/> is returned only on creation.
/// </summary>
public sealed class WebhookEndpoint
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "webhook_endpoint";
    [JsonPropertyName("url")] public string Url { get; set; } = "";
    [JsonPropertyName("event_types")] public List<string> EventTypes { get; set; } = [];
    [JsonPropertyName("secret")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Secret { get; set; }
    [JsonPropertyName("disabled_at")] public string? DisabledAt { get; set; }
    [JsonPropertyName("disabled_reason")] public string? DisabledReason { get; set; }
    [JsonPropertyName("created_at")] public string CreatedAt { get; set; } = "";
}

/// <summary>Body of <c>POST /v1/webhook_endpoints</c>.</summary>
public sealed class CreateWebhookEndpointRequest
{
    [JsonPropertyName("url")] public string Url { get; set; } = "";
    [JsonPropertyName("event_types")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? EventTypes { get; set; }
}
