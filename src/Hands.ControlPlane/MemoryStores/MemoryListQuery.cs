using System.Buffers.Text;
using System.Text;
using Hands.ControlPlane.Infrastructure;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.MemoryStores;

/// <summary>
/// A memory listing: <c>view</c> (<c>basic</c> default, or <c>full</c>), <c>limit</c> (1-100; a <c>full</c> page holds
/// at most 20), <c>page</c>, <c>path_prefix</c> (whole segments, ends in '/') and <c>depth</c> (0 = everything below).
/// </summary>
public sealed record MemoryListQuery(string View, int Limit, string? After, string PathPrefix, int Depth)
{
    public static MemoryListQuery From(IQueryCollection query)
    {
        var view = ParseView(query, MemoryValues.ViewBasic);
        var limit = QueryValues.Int(query, "limit", 20, 1, MemoryValues.MaxBasicPage);
        if (view == MemoryValues.ViewFull)
        {
            limit = Math.Min(limit, MemoryValues.MaxFullPage);
        }

        var prefix = MemoryPaths.ValidatePrefix(query["path_prefix"].ToString());
        var depth = QueryValues.Int(query, "depth", 0, 0, MemoryPaths.MaxSegments);
        return new(view, limit, DecodeCursor(query["page"].ToString()), prefix, depth);
    }

    /// <summary><c>view</c>: <c>basic</c> or <c>full</c>; <paramref name="fallback"/> when absent.</summary>
    public static string ParseView(IQueryCollection query, string fallback)
    {
        var view = query["view"].ToString();
        return view.Length == 0 ? fallback : view is MemoryValues.ViewBasic or MemoryValues.ViewFull
            ? view
            : throw ApiException.Invalid($"view: Input should be 'basic' or 'full', not '{view}'");
    }

    internal static string EncodeCursor(string path) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes("m:" + path));

    private static string? DecodeCursor(string page)
    {
        if (page.Length == 0)
        {
            return null;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(page));
            if (text.StartsWith("m:", StringComparison.Ordinal))
            {
                return text[2..];
            }
        }
        catch (FormatException)
        {
        }

        throw ApiException.Invalid("page: invalid page cursor; pass the next_page value of a previous response");
    }
}
