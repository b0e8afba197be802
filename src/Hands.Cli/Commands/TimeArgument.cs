using System.Globalization;

namespace Hands.Cli.Commands;

/// <summary>
/// A point in time given on the command line, as Unix milliseconds: the digits themselves, an ISO 8601 time
/// (<c>2026-11-30T17:00:00Z</c>), or an age before now (<c>90s</c>, <c>15m</c>, <c>2h</c>, <c>1d</c>).
/// </summary>
internal static class TimeArgument
{
    public static long? ParseMs(string? value, string option, DateTimeOffset now)
    {
        if (value is null)
        {
            return null;
        }

        var text = value.Trim();
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            return ms;
        }

        if (text.Length >= 2 && long.TryParse(text[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            TimeSpan? age = text[^1] switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                'd' => TimeSpan.FromDays(amount),
                _ => null,
            };
            if (age is { } before)
            {
                return (now - before).ToUnixTimeMilliseconds();
            }
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time.ToUnixTimeMilliseconds();
        }

        throw new CliException($"{option}: '{value}' is not Unix milliseconds, an ISO 8601 time or an age like 15m, 2h, 1d.");
    }
}
