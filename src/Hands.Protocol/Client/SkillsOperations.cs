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
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SkillsRetrieve, skillId), HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}", null, null,
            ProtocolJsonContext.Default.Skill, cancellationToken, beta: Beta);

    public Task<Page<SkillVersion>> ListVersionsAsync(string skillId, int? limit = null, string? page = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SkillVersionsList, skillId), HttpMethod.Get, $"/v1/skills/{Query.Escape(skillId)}/versions",
            new Query().With("limit", limit).With("page", page), null,
            ProtocolJsonContext.Default.PageSkillVersion, cancellationToken, beta: Beta);

    public Task<SkillVersion> GetVersionAsync(string skillId, string version, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.SkillVersionsRetrieve, skillId, version), HttpMethod.Get,
            $"/v1/skills/{Query.Escape(skillId)}/versions/{Query.Escape(version)}", null, null,
            ProtocolJsonContext.Default.SkillVersion, cancellationToken, beta: Beta);

    /// <summary>Downloads a version's archive (zip or tar.*) into <paramref name="destination"/>.</summary>
    public Task DownloadVersionContentAsync(string skillId, string version, Stream destination, CancellationToken cancellationToken = default) =>
        _p.SendAsync(new ApiCall(ApiEndpoints.SkillVersionsDownload, skillId, version), HttpMethod.Get,
            $"/v1/skills/{Query.Escape(skillId)}/versions/{Query.Escape(version)}/content", null, null,
            async (response, ct) =>
            {
                await response.Content.CopyToAsync(destination, ct).ConfigureAwait(false);
                return true;
            }, cancellationToken, streaming: true, beta: Beta, headers: new Dictionary<string, string> { ["Accept"] = "application/binary" });

    /// <summary>
    /// Local control plane extension: uploads a skill archive (zip or tar.gz) as a new skill, or as a new version
    /// of <paramref name="skillId"/>.
    /// </summary>
    public async Task<SkillVersion> UploadAsync(byte[] archive, string? skillId = null, string? name = null, CancellationToken cancellationToken = default)
    {
        var path = skillId is null ? "/v1/skills" : $"/v1/skills/{Query.Escape(skillId)}/versions";
        // The same routes as the official creates (which take multipart); the span names follow the route.
        var call = skillId is null ? new ApiCall(ApiEndpoints.SkillsCreate) : new ApiCall(ApiEndpoints.SkillVersionsCreate, skillId);
        return await _p.SendAsync(call, HttpMethod.Post, path, new Query().With("name", name), null, static async (response, ct) =>
            {
                var text = await response.Content.ReadAsStringAsync(ct).ConfigureAwait(false);
                return System.Text.Json.JsonSerializer.Deserialize(text, ProtocolJsonContext.Default.SkillVersion)
                    ?? throw new ManagedAgentsException((int)response.StatusCode, null, "empty skill upload response", null, null);
            }, cancellationToken, beta: Beta, rawBody: archive,
            responseAttributes: v => skillId is null ? ApiEndpoints.Created("anthropic.skill.id", v.SkillId) : ApiEndpoints.Created("anthropic.skill.version.id", v.Id))
            .ConfigureAwait(false);
    }
}
