namespace Hands.Cli.Configuration;

/// <summary>
/// Loads <c>.env</c> then <c>.env.local</c> from the current directory into the process environment. Precedence,
/// highest first: command-line flags, <c>.env.local</c>, <c>.env</c>, the shell's environment. The files win over the
/// shell on purpose (as in the reference integration): a stale key exported in a shell must not silently point the
/// orchestrator at another account. Lines are <c>NAME=value</c>, optionally quoted, <c>#</c> comments, an optional
/// <c>export </c> prefix. Values are never printed.
/// </summary>
internal static class DotEnv
{
    public static IReadOnlyList<string> Load(string directory)
    {
        var loaded = new List<string>();
        foreach (var file in new[] { ".env", ".env.local" })
        {
            var path = Path.Combine(directory, file);
            if (!File.Exists(path))
            {
                continue;
            }

            foreach (var (name, value) in Parse(File.ReadAllLines(path), path))
            {
                Environment.SetEnvironmentVariable(name, value);
            }

            loaded.Add(path);
        }

        return loaded;
    }

    public static IEnumerable<(string Name, string Value)> Parse(IEnumerable<string> lines, string source)
    {
        var number = 0;
        foreach (var raw in lines)
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            if (line.StartsWith("export ", StringComparison.Ordinal))
            {
                line = line["export ".Length..].TrimStart();
            }

            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || !line[..eq].Trim().All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                throw new CliException($"{source}:{number}: expected NAME=value");
            }

            var value = line[(eq + 1)..].Trim();
            if (value.Length >= 2 && (value[0] == '"' || value[0] == '\'') && value[^1] == value[0])
            {
                value = value[1..^1];
            }
            else if (value.IndexOf(" #", StringComparison.Ordinal) is var comment and >= 0)
            {
                value = value[..comment].TrimEnd();
            }

            yield return (line[..eq].Trim(), value);
        }
    }
}
