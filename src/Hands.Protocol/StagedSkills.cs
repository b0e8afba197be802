namespace Hands.Protocol;

/// <summary>
/// Where an orchestrator leaves a session's skills for a worker that holds only a sessions token (which the skills API
/// refuses): for each of the agent's skills, the archive and a two-line file with the version's name and number, in a
/// root-only directory of the sandbox. The worker installs from there and deletes them; without them it downloads.
/// </summary>
public static class StagedSkills
{
    /// <summary>The directory in the sandbox.</summary>
    public const string Directory = "/run/hands-skills";

    /// <summary>The archive of <paramref name="skillId"/> as the agent asks for it (<paramref name="requestedVersion"/>: a number or <c>latest</c>).</summary>
    public static string ArchivePath(string directory, string skillId, string requestedVersion) =>
        Path.Combine(directory, $"{Safe(skillId)}@{Safe(requestedVersion)}.archive");

    /// <summary>The version's name (line 1) and number (line 2).</summary>
    public static string NamePath(string directory, string skillId, string requestedVersion) =>
        Path.Combine(directory, $"{Safe(skillId)}@{Safe(requestedVersion)}.name");

    /// <summary>The version an agent's skill entry asks for.</summary>
    public static string Requested(string? version) => string.IsNullOrEmpty(version) ? "latest" : version;

    private static string Safe(string part) => new([.. part.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' ? c : '_')]);
}
