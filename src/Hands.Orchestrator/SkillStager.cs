using Hands.Protocol;
using Hands.Protocol.Client;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// Puts a session agent's skills into its sandbox before the worker starts, because the worker there holds only the
/// item's sessions token and the skills API refuses that token (<c>reference/drift-2026-11.md</c>). The orchestrator
/// downloads each skill with its own credential and writes the archive, with the version's name and number, to
/// <see cref="StagedSkills.Directory"/>; the worker installs from there. As in the official workers, a skill that
/// fails is logged and skipped, never the session.
/// <para>
/// INFERRED: upstream's skills API accepting the environment key is not documented either way; the local control plane
/// accepts it. Where it does not, bake skills into the sandbox image.
/// </para>
/// </summary>
public sealed class SkillStager(ManagedAgentsClient environmentClient, ILogger logger)
{
    /// <summary>Stages every skill of the session's agent into <paramref name="sandbox"/>; returns how many were staged.</summary>
    public async Task<int> StageAsync(SandboxProxyClient sandbox, string sessionId, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        var session = await environmentClient.Sessions.GetAsync(sessionId, cancellationToken).ConfigureAwait(false);
        if (session.Agent.Skills.Count == 0)
        {
            // Nothing to stage, and nothing there is read: the worker looks only for the agent's own skills.
            return 0;
        }

        // Whatever an earlier item's code left there goes first: the worker must find only what is staged now.
        var reset = await sandbox.RunAsync(new Hands.Sandboxes.Models.RunProcessRequest
        {
            Command = "/bin/sh",
            Args = ["-c", $"rm -rf '{StagedSkills.Directory}' && mkdir -m 700 '{StagedSkills.Directory}'"],
        }, cancellationToken).ConfigureAwait(false);
        if (reset.ExitCode != 0)
        {
            throw new OrchestratorException($"session {sessionId}: the skills staging directory could not be reset: {reset.Stderr.Trim()}");
        }

        var staged = 0;
        foreach (var skill in session.Agent.Skills)
        {
            var requested = StagedSkills.Requested(skill.Version);
            try
            {
                var version = await environmentClient.Skills.GetVersionAsync(skill.SkillId, requested, cancellationToken).ConfigureAwait(false);
                using var archive = new MemoryStream();
                await environmentClient.Skills.DownloadVersionContentAsync(skill.SkillId, version.Version, archive, cancellationToken).ConfigureAwait(false);
                // Archive first, name last: the worker takes a skill as staged only when both are there.
                await sandbox.WriteFileAsync(StagedSkills.ArchivePath(StagedSkills.Directory, skill.SkillId, requested), archive.ToArray(), cancellationToken).ConfigureAwait(false);
                await sandbox.WriteFileAsync(StagedSkills.NamePath(StagedSkills.Directory, skill.SkillId, requested),
                    System.Text.Encoding.UTF8.GetBytes($"{version.Name}\n{version.Version}\n"), cancellationToken).ConfigureAwait(false);
                staged++;
            }
            catch (Exception ex) when (ex is ManagedAgentsException or TensorlakeException or HttpRequestException)
            {
                logger.LogWarning("session {Session}: skill {Skill} could not be staged: {Error}", sessionId, skill.SkillId, ex.Message);
            }
        }

        return staged;
    }
}
