using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/skills</c> (beta <c>skills-2025-10-02</c>).</summary>
public sealed class SkillsOperations
{
    /// <summary>The beta header value of the skills endpoints.</summary>
    public const string Beta = "skills-2025-10-02";

    private readonly ProtocolPipeline _p;

    internal SkillsOperations(ProtocolPipeline pipeline) => _p = pipeline;

    public Task<Skill> GetAsync(string skillId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}", null, null,
            ProtocolJsonContext.Default.Skill, cancellationToken, beta: Beta);

    public Task<Page<SkillVersion>> ListVersionsAsync(string skillId, int? limit = null, string? page = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}/versions",
            new Query().With("limit", limit).With("page", page), null,
            ProtocolJsonContext.Default.PageSkillVersion, cancellationToken, beta: Beta);

    public Task<SkillVersion> GetVersionAsync(string skillId, string version, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}/versions/{Query.Escape(version)}", null, null,
            ProtocolJsonContext.Default.SkillVersion, cancellationToken, beta: Beta);

    /// <summary>Downloads a version's archive (zip or tar.*) into <paramref name="destination"/>.</summary>
    public async Task DownloadVersionContentAsync(string skillId, string version, Stream destination, CancellationToken cancellationToken = default)
    {
        using var response = await _p.SendAsync(HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}/versions/{Query.Escape(version)}/content",
            null, null, cancellationToken, streaming: true, beta: Beta,
            headers: new Dictionary<string, string> { ["Accept"] = "application/binary" }).ConfigureAwait(false);
        await response.Content.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Local control plane extension: uploads a skill archive (zip or tar.gz) as a new skill, or as a new version
    /// of <paramref name="skillId"/>.
    /// </summary>
    public async Task<SkillVersion> UploadAsync(byte[] archive, string? skillId = null, string? name = null, CancellationToken cancellationToken = default)
    {
        var path = skillId is null ? "/v1/skills" : $"/v1/skills/{Query.Escape(skillId)}/versions";
        using var response = await _p.SendAsync(HttpMethod.Post, path, new Query().With("name", name), null, cancellationToken,
            beta: Beta, rawBody: archive).ConfigureAwait(false);
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return System.Text.Json.JsonSerializer.Deserialize(text, ProtocolJsonContext.Default.SkillVersion)
            ?? throw new ManagedAgentsException((int)response.StatusCode, null, "empty skill upload response", null, null);
    }
}
