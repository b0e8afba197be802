using System.Globalization;
using System.Text;

namespace Hands.Engine.Network.Telemetry;

/// <summary>
/// The query of the network endpoints, checked: <c>from_ms</c> and <c>to_ms</c> (Unix milliseconds, default the last
/// hour up to now, from not after to), <c>limit</c> (1 to <see cref="MaxLimit"/>, default <see cref="DefaultLimit"/>)
/// and the events' opaque <c>cursor</c>. Anything else is a 400 naming the parameter and the rule.
/// </summary>
internal sealed record NetworkQueryParameters(long FromMs, long ToMs, int Limit, long AfterSequence)
{
    public const int MaxLimit = 500;
    public const int DefaultLimit = 100;
    public static readonly TimeSpan DefaultWindow = TimeSpan.FromHours(1);

    /// <summary>Reads the query; <paramref name="allowCursor"/> is false for destinations, which are not paged.</summary>
    public static NetworkQueryParameters Parse(Func<string, string?> query, string sandboxId, long nowMs, bool allowCursor)
    {
        var to = Milliseconds(query("to_ms"), "to_ms") ?? nowMs;
        var from = Milliseconds(query("from_ms"), "from_ms") ?? Math.Max(0, to - (long)DefaultWindow.TotalMilliseconds);
        if (from > to)
        {
            throw new EngineException(400, $"from_ms ({from}) is after to_ms ({to})");
        }

        var limit = DefaultLimit;
        if (query("limit") is { } rawLimit)
        {
            if (!int.TryParse(rawLimit, NumberStyles.None, CultureInfo.InvariantCulture, out limit) || limit < 1 || limit > MaxLimit)
            {
                throw new EngineException(400, $"limit must be a whole number from 1 to {MaxLimit}, not '{rawLimit}'");
            }
        }

        long after = 0;
        if (query("cursor") is { Length: > 0 } cursor)
        {
            if (!allowCursor)
            {
                throw new EngineException(400, "cursor applies only to network events; destinations are one answer per window");
            }

            after = Cursor.Decode(cursor, sandboxId);
        }

        return new NetworkQueryParameters(from, to, limit, after);
    }

    private static long? Milliseconds(string? raw, string name)
    {
        if (raw is null)
        {
            return null;
        }

        return long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) && value >= 0
            ? value
            : throw new EngineException(400, $"{name} must be Unix milliseconds (a whole number, not negative), not '{raw}'");
    }

    /// <summary>
    /// The events' cursor: the last sequence number a page returned, bound to its sandbox, base64url. Stable: a cursor
    /// keeps meaning "after that event" however many events arrive later.
    /// </summary>
    public static class Cursor
    {
        private const string Version = "n1";

        public static string Encode(string sandboxId, long sequence) =>
            Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Version}|{sandboxId}|{sequence.ToString(CultureInfo.InvariantCulture)}"))
                .TrimEnd('=').Replace('+', '-').Replace('/', '_');

        public static long Decode(string cursor, string sandboxId)
        {
            var invalid = new EngineException(400, "cursor is not one this server issued for this sandbox; start again without it");
            string text;
            try
            {
                var padded = cursor.Replace('-', '+').Replace('_', '/');
                text = Encoding.UTF8.GetString(Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '=')));
            }
            catch (FormatException)
            {
                throw invalid;
            }

            var parts = text.Split('|');
            return parts.Length == 3 && parts[0] == Version && parts[1] == sandboxId
                && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var sequence)
                ? sequence
                : throw invalid;
        }
    }
}
