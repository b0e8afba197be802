using System.Globalization;

namespace Hands.Protocol.Client;

/// <summary>Builds query strings; null values are left out, arrays use the API's bracket style (<c>types[]=a</c>).</summary>
internal sealed class Query : List<KeyValuePair<string, string?>>
{
    public Query With(string key, string? value)
    {
        Add(new(key, value));
        return this;
    }

    public Query With(string key, int? value) => With(key, value?.ToString(CultureInfo.InvariantCulture));

    public Query With(string key, bool? value) => With(key, value is null ? null : value.Value ? "true" : "false");

    public Query WithArray(string key, IEnumerable<string>? values)
    {
        if (values is not null)
        {
            foreach (var v in values)
            {
                Add(new(key + "[]", v));
            }
        }

        return this;
    }

    internal static string Escape(string segment) => Uri.EscapeDataString(segment);
}
