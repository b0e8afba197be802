using Hands.Protocol.Models;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>Pages of a listing: every list endpoint reads one row more than its limit to know whether a next page exists.</summary>
internal static class Paging
{
    /// <summary>The first <paramref name="limit"/> rows, with a cursor to the next page when <paramref name="rows"/> holds more.</summary>
    public static Page<T> ToPage<T>(List<(long Position, T Item)> rows, int limit) => new()
    {
        Data = rows.Take(limit).Select(r => r.Item).ToList(),
        NextPage = rows.Count > limit ? Cursor.Encode(rows[limit - 1].Position) : null,
    };
}
