using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>A page of agents or environments, newest first; archived ones only with <c>include_archived=true</c>.</summary>
public sealed record ArchivableListQuery(PageQuery Page, bool IncludeArchived)
{
    public static ArchivableListQuery From(IQueryCollection query)
    {
        var page = PageQuery.From(query, 20, 1000);
        return new(page, query["include_archived"] == "true");
    }
}
