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
            // An age reaching before 1970 (or past what TimeSpan holds) is refused here, not left to an overflow.
            var unit = text[^1] switch
            {
                's' => TimeSpan.TicksPerSecond,
                'm' => TimeSpan.TicksPerMinute,
                'h' => TimeSpan.TicksPerHour,
                'd' => TimeSpan.TicksPerDay,
                _ => 0L,
            };
            if (unit > 0)
            {
                var available = (now - DateTimeOffset.UnixEpoch).Ticks;
                if (amount > available / unit)
                {
                    throw new CliException($"{option}: '{value}' is before 1970; give a smaller age.");
                }

                return (now - TimeSpan.FromTicks(amount * unit)).ToUnixTimeMilliseconds();
            }
        }

        if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            return time.ToUnixTimeMilliseconds();
        }

        throw new CliException($"{option}: '{value}' is not Unix milliseconds, an ISO 8601 time or an age like 15m, 2h, 1d.");
    }
}
