using System.Globalization;
using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// A page of sessions: newest first unless <c>order=asc</c>, archived ones only with <c>include_archived=true</c>,
/// only <c>agent_id</c>'s when it is set (empty: all agents'), only the <c>statuses[]</c> listed when any are, and, as the
/// official SDK's <c>SessionListParams</c> names them, only those of <c>agent_version</c>, with <c>memory_store_id</c>
/// attached, or created within <c>created_at[gt|gte|lt|lte]</c>.
/// </summary>
public sealed record SessionListQuery(PageQuery Page, bool Descending, bool IncludeArchived, string AgentId, IReadOnlyList<string> Statuses)
{
    /// <summary>Only sessions on this version of their agent; null: any.</summary>
    public int? AgentVersion { get; init; }

    /// <summary>Only sessions with this memory store among their resources; null: any.</summary>
    public string? MemoryStoreId { get; init; }

    /// <summary>Bounds on <c>created_at</c>: the SQL comparison (<c>&gt;</c>, <c>&gt;=</c>, ...) and the instant, in UTC.</summary>
    public IReadOnlyList<(string Comparison, DateTimeOffset Instant)> CreatedAt { get; init; } = [];

    private static readonly (string Name, string Comparison)[] CreatedAtBounds =
        [("created_at[gt]", ">"), ("created_at[gte]", ">="), ("created_at[lt]", "<"), ("created_at[lte]", "<=")];

    public static SessionListQuery From(IQueryCollection query)
    {
        var page = PageQuery.From(query, 20, 1000);
        var descending = (query["order"].ToString() is var order && order.Length > 0 ? order : "desc") switch
        {
            "desc" => true,
            "asc" => false,
            var other => throw ApiException.Invalid($"order: Input should be 'asc' or 'desc', not '{other}'"),
        };
        var createdAt = new List<(string, DateTimeOffset)>();
        foreach (var (name, comparison) in CreatedAtBounds)
        {
            if (query[name].ToString() is { Length: > 0 } value)
            {
                createdAt.Add((comparison, DateTimeOffset.TryParse(value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant)
                    ? instant.ToUniversalTime()
                    : throw ApiException.Invalid($"{name}: Input should be a valid datetime (RFC 3339), not '{value}'")));
            }
        }

        return new(page, descending, query["include_archived"] == "true", query["agent_id"].ToString(), QueryValues.Values(query, "statuses"))
        {
            AgentVersion = QueryValues.OptionalInt(query, "agent_version"),
            MemoryStoreId = query["memory_store_id"].ToString() is { Length: > 0 } store ? store : null,
            CreatedAt = createdAt,
        };
    }
}
