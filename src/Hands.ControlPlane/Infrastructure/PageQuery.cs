using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>Which page of a listing: at most <paramref name="Limit"/> rows after the cursor position <paramref name="After"/> (null: the first page).</summary>
public sealed record PageQuery(int Limit, long? After)
{
    /// <summary>Reads <c>limit</c> (1 to <paramref name="maxLimit"/>, default <paramref name="defaultLimit"/>) and <c>page</c>.</summary>
    public static PageQuery From(IQueryCollection query, int defaultLimit, int maxLimit)
    {
        ArgumentNullException.ThrowIfNull(query);
        return new(QueryValues.Int(query, "limit", defaultLimit, 1, maxLimit), Cursor.Decode(query["page"]));
    }
}
