using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>Opaque page cursors: base64url of a row position. A malformed cursor is a 400 that names <c>page</c>.</summary>
public static class Cursor
{
    public static string Encode(long position) =>
        Base64Url.EncodeToString(Encoding.ASCII.GetBytes("p:" + position.ToString(CultureInfo.InvariantCulture)));

    public static long? Decode(string? page)
    {
        if (string.IsNullOrEmpty(page))
        {
            return null;
        }

        try
        {
            var text = Encoding.ASCII.GetString(Base64Url.DecodeFromChars(page));
            if (text.StartsWith("p:", StringComparison.Ordinal)
                && long.TryParse(text.AsSpan(2), NumberStyles.None, CultureInfo.InvariantCulture, out var position))
            {
                return position;
            }
        }
        catch (FormatException)
        {
        }

        throw ApiException.Invalid("page: invalid page cursor; pass the next_page value of a previous response");
    }
}
