using System.Globalization;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Client;

/// <summary>Network telemetry reads (<c>/v1/namespaces/{ns}/sandboxes/{id}/network/…</c>); they work after the sandbox terminated.</summary>
public sealed partial class TensorlakeClient
{
    /// <summary>One page of observed connections, policy decisions and capture gaps.</summary>
    public Task<NetworkEventsResponse> GetNetworkEventsAsync(string sandboxId, NetworkQuery? query = null, CancellationToken cancellationToken = default) =>
        _lifecycle.JsonAsync(HttpMethod.Get, NetworkUrl(sandboxId, "events", query ?? new NetworkQuery()), null, idempotent: true,
            SandboxesJsonContext.Default.NetworkEventsResponse, cancellationToken);

    /// <summary>
    /// Every event of the window, page after page (<see cref="NetworkEventPageable.AsPages"/> for the pages themselves);
    /// <see cref="NetworkQuery.Limit"/> is the page size.
    /// </summary>
    public NetworkEventPageable GetNetworkEventsPageable(string sandboxId, NetworkQuery? query = null) =>
        new((cursor, ct) => GetNetworkEventsAsync(sandboxId, (query ?? new NetworkQuery()) with { Cursor = cursor }, ct), query?.Cursor);

    /// <summary>Connections per destination over whole UTC minutes. <see cref="NetworkQuery.Cursor"/> must be null.</summary>
    public Task<NetworkDestinationsResponse> GetNetworkDestinationsAsync(string sandboxId, NetworkQuery? query = null, CancellationToken cancellationToken = default)
    {
        if (query?.Cursor is not null)
        {
            throw new ArgumentException("a cursor applies only to network events", nameof(query));
        }

        return _lifecycle.JsonAsync(HttpMethod.Get, NetworkUrl(sandboxId, "destinations", query ?? new NetworkQuery()), null, idempotent: true,
            SandboxesJsonContext.Default.NetworkDestinationsResponse, cancellationToken);
    }

    /// <summary>The collector's health for the sandbox and what it covers.</summary>
    public Task<NetworkCaptureStatus> GetNetworkStatusAsync(string sandboxId, CancellationToken cancellationToken = default) =>
        _lifecycle.JsonAsync(HttpMethod.Get, NetworkUrl(sandboxId, "status", null), null, idempotent: true,
            SandboxesJsonContext.Default.NetworkCaptureStatus, cancellationToken);

    /// <summary>The URL of a telemetry read; the query's limit is checked here so a bad one never leaves the process.</summary>
    internal string NetworkUrl(string sandboxId, string what, NetworkQuery? query)
    {
        var parameters = new List<string>();
        if (query is not null)
        {
            if (query.Limit is { } limit && limit is < 1 or > 500)
            {
                throw new ArgumentOutOfRangeException(nameof(query), limit, "limit must be from 1 to 500");
            }

            Add("from_ms", query.FromMs?.ToString(CultureInfo.InvariantCulture));
            Add("to_ms", query.ToMs?.ToString(CultureInfo.InvariantCulture));
            Add("limit", query.Limit?.ToString(CultureInfo.InvariantCulture));
            Add("cursor", query.Cursor);
        }

        return $"{Options.ResolveTelemetryBase()}/sandboxes/{Id(sandboxId)}/network/{what}" + (parameters.Count > 0 ? "?" + string.Join('&', parameters) : "");

        void Add(string name, string? value)
        {
            if (value is not null)
            {
                parameters.Add($"{name}={Uri.EscapeDataString(value)}");
            }
        }
    }
}
