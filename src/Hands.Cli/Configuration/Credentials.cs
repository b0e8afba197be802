namespace Hands.Cli.Configuration;

/// <summary>
/// Secrets from root-only files rather than the environment or the command line: for each secret variable
/// <c>NAME</c>, the file <c>NAME_FILE</c> names (refused unless only its owner may read it), else the file
/// <c>$CREDENTIALS_DIRECTORY/NAME</c> (systemd's <c>LoadCredential=NAME:/etc/hands/credentials/...</c> puts it there,
/// readable by the service alone). A file wins over the variable, as <c>.env</c> does over the shell: the service's
/// own credential is the one meant. Values are never printed; errors name the file and the rule.
/// </summary>
internal static class Credentials
{
    /// <summary>Every secret <c>hands</c> reads from its environment.</summary>
    public static readonly string[] Names =
    [
        "ANTHROPIC_API_KEY", "ANTHROPIC_ENVIRONMENT_KEY", "ANTHROPIC_WEBHOOK_SIGNING_KEY", "TENSORLAKE_API_KEY", "HANDS_ENGINE_API_KEY", "HANDS_API_KEY",
    ];

    /// <summary>Loads each secret found in a file into this process's environment; answers the names loaded.</summary>
    public static IReadOnlyList<string> Load()
    {
        var loaded = new List<string>();
        var directory = Environment.GetEnvironmentVariable("CREDENTIALS_DIRECTORY") is { Length: > 0 } d ? d : null;
        foreach (var name in Names)
        {
            string? value = null;
            if (Environment.GetEnvironmentVariable(name + "_FILE") is { Length: > 0 } file)
            {
                value = Read(file, name + "_FILE", requireOwnerOnly: true);
            }
            else if (directory is not null && File.Exists(Path.Combine(directory, name)))
            {
                // systemd made this directory for this service alone (mode 0500, files 0400, on a private mount).
                value = Read(Path.Combine(directory, name), "CREDENTIALS_DIRECTORY", requireOwnerOnly: false);
            }

            if (value is not null)
            {
                Environment.SetEnvironmentVariable(name, value);
                loaded.Add(name);
            }
        }

        return loaded;
    }

    private static string Read(string path, string source, bool requireOwnerOnly)
    {
        FileInfo info;
        try
        {
            info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new CliException($"{source}: '{path}' does not exist.");
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"{source}: '{path}' cannot be read ({ex.Message}).");
        }

        if (requireOwnerOnly && !OperatingSystem.IsWindows()
            && (info.UnixFileMode & (UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new CliException($"{source}: '{path}' may be read by others (mode {Convert.ToString((int)info.UnixFileMode, 8)}); make it owner-only (chmod 600).");
        }

        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new CliException($"{source}: '{path}' cannot be read ({ex.Message}).");
        }

        var value = text.TrimEnd('\r', '\n');
        return value.Length > 0 && !value.Contains('\n', StringComparison.Ordinal)
            ? value
            : throw new CliException($"{source}: '{path}' must hold the secret on one line.");
    }
}
