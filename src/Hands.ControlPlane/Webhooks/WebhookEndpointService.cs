using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Webhooks;

namespace Hands.ControlPlane.Webhooks;

/// <summary>Local extension <c>/v1/webhook_endpoints</c>: register, list and remove endpoints (Console-only at Anthropic).</summary>
public sealed class WebhookEndpointService(ControlPlaneCore core)
{
    public async Task<WebhookEndpoint> CreateAsync(Caller caller, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("register webhook endpoints");
        body.OnlyFields("url", "event_types", "secret");
        var url = body.RequireString("url", 1, 2048);
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
        {
            throw ApiException.Invalid("url: must be an absolute http or https URL");
        }

        var types = body.OptionalArray("event_types", maxItems: 100) ?? [];
        var eventTypes = new List<string>();
        for (var i = 0; i < types.Count; i++)
        {
            if (types[i].ValueKind != System.Text.Json.JsonValueKind.String || types[i].GetString() is not { Length: > 0 } t)
            {
                throw ApiException.Invalid($"event_types[{i}]: Input should be a non-empty string");
            }

            eventTypes.Add(t);
        }

        var secret = body.OptionalString("secret");
        if (secret is not null && !WebhookSecret.IsWellFormed(secret))
        {
            throw ApiException.Invalid("secret: must be 'whsec_' followed by base64 of at least 24 bytes (or omit it to have one generated)");
        }

        secret ??= WebhookSecret.Generate();
        return await core.WriteAsync(scope =>
        {
            var endpoint = new WebhookEndpoint { Id = Ids.New("whep"), Url = url, EventTypes = eventTypes, CreatedAt = scope.NowText };
            scope.Sql.Exec("INSERT INTO webhook_endpoints(id,secret,json) VALUES($id,$s,$j)",
                ("$id", endpoint.Id), ("$s", secret), ("$j", Store.Serialize(endpoint, ProtocolJsonContext.Default.WebhookEndpoint)));
            endpoint.Secret = secret; // shown once, in this answer only
            return endpoint;
        }, ct);
    }

    public Page<WebhookEndpoint> List(Caller caller)
    {
        caller.RequireApiKey("list webhook endpoints");
        return new Page<WebhookEndpoint>
        {
            Data = core.Read(sql => sql.Query("SELECT json FROM webhook_endpoints ORDER BY rowid",
                r => Store.Deserialize(r.GetString(0), ProtocolJsonContext.Default.WebhookEndpoint))),
        };
    }

    public async Task<DeletedResource> DeleteAsync(Caller caller, string id, CancellationToken ct)
    {
        caller.RequireApiKey("remove webhook endpoints");
        return await core.WriteAsync(scope =>
        {
            scope.Sql.Exec("DELETE FROM webhook_outbox WHERE endpoint_id=$id", ("$id", id));
            return scope.Sql.Exec("DELETE FROM webhook_endpoints WHERE id=$id", ("$id", id)) == 0
                ? throw ApiException.NotFound($"webhook endpoint {id} not found")
                : new DeletedResource { Id = id, Type = "webhook_endpoint_deleted" };
        }, ct);
    }
}
