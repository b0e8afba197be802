using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary>
/// Local control plane extension <c>/v1/webhook_endpoints</c>: Anthropic registers webhook endpoints in its Console.
/// </summary>
public sealed class WebhookEndpointsOperations
{
    private readonly ProtocolPipeline _p;

    internal WebhookEndpointsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    /// <summary>Registers an endpoint; the returned <see cref="WebhookEndpoint.Secret"/> (<c>whsec_...</c>) is shown only here.</summary>
    public Task<WebhookEndpoint> CreateAsync(CreateWebhookEndpointRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.WebhookEndpointsCreate, HttpMethod.Post, "/v1/webhook_endpoints", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.CreateWebhookEndpointRequest),
            ProtocolJsonContext.Default.WebhookEndpoint, cancellationToken);

    public Task<Page<WebhookEndpoint>> ListAsync(CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.WebhookEndpointsList, HttpMethod.Get, "/v1/webhook_endpoints", null, null,
            ProtocolJsonContext.Default.PageWebhookEndpoint, cancellationToken);

    public Task<DeletedResource> DeleteAsync(string endpointId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.WebhookEndpointsDelete, endpointId), HttpMethod.Delete, $"/v1/webhook_endpoints/{Query.Escape(endpointId)}", null, null,
            ProtocolJsonContext.Default.DeletedResource, cancellationToken);
}
