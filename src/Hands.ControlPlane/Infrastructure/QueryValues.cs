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

    /// <summary>The integer <paramref name="name"/> when the query has it (any value), else null.</summary>
    public static int? OptionalInt(IQueryCollection query, string name) =>
        query.ContainsKey(name)
            ? int.TryParse(query[name].ToString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
                ? value
                : throw ApiException.Invalid($"{name}: Input should be a valid integer, not '{query[name]}'")
            : null;

    /// <summary>Every value of a repeated parameter, sent as <c>name[]</c> or <c>name</c>, empty ones dropped.</summary>
    public static List<string> Values(IQueryCollection query, string name) =>
        [.. query[name + "[]"].Concat(query[name]).Where(v => !string.IsNullOrEmpty(v)).Select(v => v!)];
}
