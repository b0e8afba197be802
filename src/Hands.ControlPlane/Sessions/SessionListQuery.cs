using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// A page of sessions: newest first unless <c>order=asc</c>, archived ones only with <c>include_archived=true</c>,
/// only <c>agent_id</c>'s when it is set (empty: all agents'), only the <c>statuses[]</c> listed when any are.
/// </summary>
public sealed record SessionListQuery(PageQuery Page, bool Descending, bool IncludeArchived, string AgentId, IReadOnlyList<string> Statuses)
{
    public static SessionListQuery From(IQueryCollection query)
    {
        var page = PageQuery.From(query, 20, 1000);
        var descending = (query["order"].ToString() is var order && order.Length > 0 ? order : "desc") switch
        {
            "desc" => true,
            "asc" => false,
            var other => throw ApiException.Invalid($"order: Input should be 'asc' or 'desc', not '{other}'"),
        };
        return new(page, descending, query["include_archived"] == "true", query["agent_id"].ToString(), QueryValues.Values(query, "statuses"));
    }
}
