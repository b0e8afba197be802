namespace Hands.Forking;

/// <summary>
/// One candidate future: a shell command run in its own child sandbox (with <c>sh -c</c>, so pipes and <c>&amp;&amp;</c>
/// work), with extra environment variables and an optional working directory.
/// </summary>
/// <param name="Name">Shown in tables and results; unique within one exploration.</param>
/// <param name="Command">The shell command.</param>
public sealed record ForkBranch(string Name, string Command)
{
    /// <summary>Extra environment for the command (added to the sandbox's own).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>Where the command runs; null is the sandbox daemon's default.</summary>
    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// Parses <c>name=command</c> (the CLI's <c>--branch</c>); the name is everything before the first <c>=</c> and
    /// may hold letters, digits, <c>-</c>, <c>_</c> and <c>.</c>.
    /// </summary>
    public static ForkBranch Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var equals = text.IndexOf('=', StringComparison.Ordinal);
        if (equals <= 0 || equals == text.Length - 1)
        {
            throw new FormatException($"a branch is NAME=COMMAND (for example fix1='sh ./test.sh'), not '{text}'");
        }

        var name = text[..equals].Trim();
        if (!IsValidName(name))
        {
            throw new FormatException($"branch name '{name}' may hold only letters, digits, '-', '_' and '.' (at most 40)");
        }

        return new ForkBranch(name, text[(equals + 1)..]);
    }

    /// <summary>True for a name made of letters, digits, <c>-</c>, <c>_</c> and <c>.</c>, 1 to 40 long.</summary>
    public static bool IsValidName(string name) =>
        name.Length is > 0 and <= 40 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
