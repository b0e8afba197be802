using System.Formats.Tar;
using System.Globalization;
using System.IO.Compression;
using System.Text;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Microsoft.AspNetCore.Http;

namespace Hands.ControlPlane.Skills;

/// <summary>
/// Skills: the read endpoints the workers use (versions, version, content), and a local upload extension:
/// <c>POST /v1/skills</c> (new skill) or <c>POST /v1/skills/{id}/versions</c> (new version) with the archive (zip or
/// tar, optionally gzip-compressed) as the raw body. Name and description come from <c>SKILL.md</c>'s front matter,
/// or from the <c>name</c> query parameter.
/// </summary>
public sealed class SkillService(ControlPlaneCore core)
{
    public async Task<SkillVersion> UploadAsync(Caller caller, string? skillId, HttpRequest request, CancellationToken ct)
    {
        caller.RequireApiKey("upload skills");
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        var archive = buffer.ToArray();
        if (archive.Length == 0)
        {
            throw ApiException.Invalid("Request body is empty; send the skill archive (zip or tar.gz) as the body.");
        }

        var (frontName, description, directory) = ReadSkillMarkdown(archive);
        var name = request.Query["name"].ToString() is { Length: > 0 } n ? n : frontName;
        if (string.IsNullOrWhiteSpace(name))
        {
            throw ApiException.Invalid("name: the archive has no SKILL.md with a 'name:' front-matter line; pass ?name=...");
        }

        return await core.WriteAsync(scope =>
        {
            Skill skill;
            if (skillId is null)
            {
                skill = new Skill { Id = Ids.New("skill"), DisplayTitle = name, CreatedAt = scope.NowText };
            }
            else
            {
                skill = scope.Sql.One("SELECT json FROM skills WHERE id=$id", r => Store.Deserialize(r.GetString(0), ProtocolJsonContext.Default.Skill), ("$id", skillId))
                    ?? throw ApiException.NotFound($"skill {skillId} not found");
            }

            // Versions are epoch-like numeric strings (microseconds), strictly increasing per skill.
            var version = scope.Now.ToUnixTimeMilliseconds() * 1000;
            if (long.TryParse(skill.LatestVersion, NumberStyles.None, CultureInfo.InvariantCulture, out var latest) && version <= latest)
            {
                version = latest + 1;
            }

            var v = new SkillVersion
            {
                Id = Ids.New("skillver"),
                SkillId = skill.Id,
                Version = version.ToString(CultureInfo.InvariantCulture),
                Name = name,
                Directory = directory ?? name,
                Description = description ?? "",
                CreatedAt = scope.NowText,
            };
            skill.LatestVersion = v.Version;
            skill.UpdatedAt = scope.NowText;
            scope.Sql.Exec("INSERT INTO skills(id,json) VALUES($id,$j) ON CONFLICT(id) DO UPDATE SET json=excluded.json",
                ("$id", skill.Id), ("$j", Store.Serialize(skill, ProtocolJsonContext.Default.Skill)));
            scope.Sql.Exec("INSERT INTO skill_versions(skill_id,version,json,content) VALUES($s,$v,$j,$c)",
                ("$s", skill.Id), ("$v", v.Version), ("$j", Store.Serialize(v, ProtocolJsonContext.Default.SkillVersion)), ("$c", archive));
            return v;
        }, ct);
    }

    public Skill Get(string skillId) =>
        core.Read(sql => sql.One("SELECT json FROM skills WHERE id=$id", r => Store.Deserialize(r.GetString(0), ProtocolJsonContext.Default.Skill), ("$id", skillId)))
        ?? throw ApiException.NotFound($"skill {skillId} not found");

    public Page<Skill> List(PageQuery query)
    {
        var (limit, after) = query;
        var rows = core.Read(sql => sql.Query("SELECT rowid, json FROM skills WHERE ($after IS NULL OR rowid > $after) ORDER BY rowid LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.Skill)), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    public Page<SkillVersion> ListVersions(string skillId, PageQuery query)
    {
        _ = Get(skillId);
        var (limit, after) = query;
        var rows = core.Read(sql => sql.Query(
            "SELECT rowid, json FROM skill_versions WHERE skill_id=$s AND ($after IS NULL OR rowid < $after) ORDER BY rowid DESC LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), ProtocolJsonContext.Default.SkillVersion)),
            ("$s", skillId), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    /// <summary>A version by its number; <c>latest</c> resolves to the newest.</summary>
    public SkillVersion GetVersion(string skillId, string version) =>
        core.Read(sql => FindVersion(sql, skillId, version, r => Store.Deserialize(r.GetString(0), ProtocolJsonContext.Default.SkillVersion)));

    public byte[] GetContent(string skillId, string version) =>
        core.Read(sql => FindVersion(sql, skillId, version, r => (byte[])r.GetValue(1)));

    private static T FindVersion<T>(Sql sql, string skillId, string version, Func<Microsoft.Data.Sqlite.SqliteDataReader, T> map) where T : class
    {
        var row = version == "latest"
            ? sql.One("SELECT json, content FROM skill_versions WHERE skill_id=$s ORDER BY CAST(version AS INTEGER) DESC LIMIT 1", map, ("$s", skillId))
            : sql.One("SELECT json, content FROM skill_versions WHERE skill_id=$s AND version=$v", map, ("$s", skillId), ("$v", version));
        return row ?? throw ApiException.NotFound($"skill {skillId} has no version {version}");
    }

    private static (string? Name, string? Description, string? Directory) ReadSkillMarkdown(byte[] archive)
    {
        try
        {
            foreach (var (path, content) in Entries(archive))
            {
                if (Path.GetFileName(path) == "SKILL.md")
                {
                    var (name, description) = ParseFrontMatter(content);
                    var dir = Path.GetDirectoryName(path.TrimStart('/'));
                    return (name, description, string.IsNullOrEmpty(dir) ? null : dir.Split('/')[0]);
                }
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or InvalidOperationException or FormatException or IOException)
        {
            throw ApiException.Invalid($"The body is not a readable zip or tar(.gz) archive: {ex.Message}");
        }

        return (null, null, null);
    }

    private static IEnumerable<(string Path, string Content)> Entries(byte[] archive)
    {
        if (archive.Length >= 4 && archive[0] == 'P' && archive[1] == 'K')
        {
            using var zip = new ZipArchive(new MemoryStream(archive), ZipArchiveMode.Read);
            foreach (var entry in zip.Entries.Where(e => e.Length < 1_000_000).ToList())
            {
                using var reader = new StreamReader(entry.Open(), Encoding.UTF8);
                yield return (entry.FullName, reader.ReadToEnd());
            }

            yield break;
        }

        Stream stream = new MemoryStream(archive);
        if (archive.Length >= 2 && archive[0] == 0x1f && archive[1] == 0x8b)
        {
            stream = new GZipStream(stream, CompressionMode.Decompress);
        }

        using var tar = new TarReader(stream);
        while (tar.GetNextEntry() is { } entry)
        {
            if (entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile && entry.DataStream is { } data && entry.Length < 1_000_000)
            {
                using var reader = new StreamReader(data, Encoding.UTF8);
                yield return (entry.Name, reader.ReadToEnd());
            }
        }
    }

    internal static (string? Name, string? Description) ParseFrontMatter(string markdown)
    {
        var lines = markdown.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n');
        if (lines.Length == 0 || lines[0].Trim() != "---")
        {
            return (null, null);
        }

        string? name = null, description = null;
        for (var i = 1; i < lines.Length && lines[i].Trim() != "---"; i++)
        {
            var colon = lines[i].IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0)
            {
                continue;
            }

            var key = lines[i][..colon].Trim();
            var value = lines[i][(colon + 1)..].Trim().Trim('"', '\'');
            if (key == "name")
            {
                name = value;
            }
            else if (key == "description")
            {
                description = value;
            }
        }

        return (name, description);
    }
}
