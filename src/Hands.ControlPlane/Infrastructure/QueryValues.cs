using System.Globalization;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>Query-string values, with the hosted service's 400 messages naming the parameter and the rule.</summary>
internal static class QueryValues
{
    /// <summary>The integer <paramref name="name"/> from <paramref name="min"/> to <paramref name="max"/>; <paramref name="fallback"/> when absent or empty.</summary>
    public static int Int(IQueryCollection query, string name, int fallback, int min, int max)
    {
        var raw = query[name].ToString();
        if (raw.Length == 0)
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            throw ApiException.Invalid($"{name}: Input should be a valid integer, not '{raw}'");
        }

        if (value < min || value > max)
        {
            throw ApiException.Invalid($"{name}: Input should be between {min} and {max}");
        }

        return value;
    }
}
