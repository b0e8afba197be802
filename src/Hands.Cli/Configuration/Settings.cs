using System.Globalization;

namespace Hands.Cli.Configuration;

/// <summary>Reads the documented environment variables, with errors that name the variable and the rule.</summary>
internal static class Settings
{
    public static string? Get(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    public static string Require(string name, string what) =>
        Get(name) ?? throw new CliException($"{name} is not set: {what}.");

    public static int Int(string name, int fallback, int min, int max)
    {
        if (Get(name) is not { } text)
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) && value >= min && value <= max
            ? value
            : throw new CliException($"{name}: '{text}' is not a whole number from {min} to {max}.");
    }

    public static bool Bool(string name, bool fallback) => Get(name)?.ToLowerInvariant() switch
    {
        null => fallback,
        "1" or "true" or "yes" or "on" => true,
        "0" or "false" or "no" or "off" => false,
        var other => throw new CliException($"{name}: '{other}' is not true or false."),
    };

    public static Uri Url(string name, string fallback)
    {
        var text = Get(name) ?? fallback;
        return Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new CliException($"{name}: '{text}' is not an absolute http(s) URL.");
    }
}
