using Hands.ControlPlane.Infrastructure;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Sessions;

/// <summary>A page of a session's events: oldest first unless <c>order=desc</c>, optionally only some <c>types[]</c>.</summary>
public sealed record EventListQuery(PageQuery Page, bool Descending, IReadOnlyList<string> Types)
{
    public static EventListQuery From(IQueryCollection query)
    {
        var page = PageQuery.From(query, 100, 1000);
        var order = query["order"].ToString();
        var descending = order switch
        {
            "" or "asc" => false,
            "desc" => true,
            _ => throw ApiException.Invalid($"order: Input should be 'asc' or 'desc', not '{order}'"),
        };
        return new(page, descending, QueryValues.Values(query, "types"));
    }
}
