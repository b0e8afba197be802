using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using Hands.Protocol;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Worker.Hosting;

namespace Hands.Worker.Skills;

/// <summary>
/// Installs the session agent's skills into <c>{workdir}/skills/&lt;name&gt;/</c>, from archives the orchestrator staged
/// (<see cref="StagedSkills"/>) or else downloaded: zip or tar (plain, gzip, bzip2, xz),
/// absolute and <c>..</c> members refused, links and devices skipped, a single wrapping directory stripped, mode 0755
/// when any exec bit is set else 0644. A failing skill is logged and skipped. <see cref="RemoveInstalled"/> deletes
/// only the directories this installer created.
/// </summary>
public sealed class SkillInstaller(ManagedAgentsClient client, string workdir, WorkerLog log, string stagedDirectory = StagedSkills.Directory)
{
    private readonly List<string> _installed = [];

    public IReadOnlyList<string> Installed => _installed;

    public async Task InstallAsync(IEnumerable<AgentSkill> skills, CancellationToken ct)
    {
        foreach (var skill in skills)
        {
            var requested = StagedSkills.Requested(skill.Version);
            var stagedArchive = StagedSkills.ArchivePath(stagedDirectory, skill.SkillId, requested);
            var stagedName = StagedSkills.NamePath(stagedDirectory, skill.SkillId, requested);
            var temp = Path.Combine(Path.GetTempPath(), $"hands-skill-{Guid.NewGuid():N}");
            try
            {
                string label, number, archive;
                if (IsPlainFile(stagedArchive) && IsPlainFile(stagedName))
                {
                    // Staged by the orchestrator: a sessions token cannot download skills.
                    var lines = await File.ReadAllLinesAsync(stagedName, ct);
                    (label, number, archive) = (lines.ElementAtOrDefault(0) ?? "", lines.ElementAtOrDefault(1) ?? requested, stagedArchive);
                }
                else
                {
                    var version = await client.Skills.GetVersionAsync(skill.SkillId, requested, ct);
                    await using (var file = File.Create(temp))
                    {
                        await client.Skills.DownloadVersionContentAsync(skill.SkillId, version.Version, file, ct);
                    }

                    (label, number, archive) = (version.Name, version.Version, temp);
                }

                var name = Path.GetFileName(label.Trim());
                if (name is "" or "." or "..")
                {
                    name = Path.GetFileName(skill.SkillId) is { Length: > 0 } id && id is not ("." or "..") ? id : "skill";
                }

                var destination = Path.Combine(workdir, "skills", name);
                if (Directory.Exists(destination))
                {
                    Directory.Delete(destination, recursive: true);
                }

                Directory.CreateDirectory(destination, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                _installed.Add(destination);
                await ExtractAsync(archive, destination, ct);
                log.Info(archive == temp ? "downloaded skill" : "installed staged skill", ("skill_id", skill.SkillId), ("version", number), ("dest", destination));
            }
            catch (Exception ex) when (ex is ManagedAgentsException or IOException or InvalidDataException or UnauthorizedAccessException or SkillArchiveException)
            {
                log.Warn("failed to download skill", ("skill_id", skill.SkillId), ("error", ex.Message));
            }
            finally
            {
                // File.Delete throws when the directory is missing (no staging here): only what exists.
                foreach (var file in new[] { temp, stagedArchive, stagedName }.Where(File.Exists))
                {
                    File.Delete(file);
                }
            }
        }
    }

    /// <summary>A regular file, not a link someone planted at a staged path.</summary>
    private static bool IsPlainFile(string path) => File.Exists(path) && new FileInfo(path).LinkTarget is null;

    public void RemoveInstalled()
    {
        foreach (var dir in _installed)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                log.Warn("skill cleanup failed", ("dir", dir), ("error", ex.Message));
            }
        }

        _installed.Clear();
    }

    /// <summary>Extracts an archive file into <paramref name="destination"/> (which must exist).</summary>
    public static async Task ExtractAsync(string archive, string destination, CancellationToken ct)
    {
        var members = new List<(string Path, bool IsDirectory, bool Executable, Func<Stream>? Open)>();
        var magic = new byte[6];
        await using (var probe = File.OpenRead(archive))
        {
            _ = await probe.ReadAtLeastAsync(magic, magic.Length, throwOnEndOfStream: false, ct);
        }

        if (magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4)
        {
            using var zip = ZipFile.OpenRead(archive);
            foreach (var entry in zip.Entries)
            {
                var unixMode = (entry.ExternalAttributes >> 16) & 0xFFFF;
                if ((unixMode & 0xF000) == 0xA000)
                {
                    continue; // symlink member
                }

                var isDir = entry.FullName.EndsWith('/');
                var captured = entry;
                members.Add((entry.FullName, isDir, (unixMode & 0x49) != 0, isDir ? null : () => captured.Open()));
            }

            await WriteMembersAsync(members, destination, ct);
            return;
        }

        await using var raw = File.OpenRead(archive);
        Stream source = raw;
        Process? decompressor = null;
        if (magic[0] == 0x1f && magic[1] == 0x8b)
        {
            source = new GZipStream(raw, CompressionMode.Decompress);
        }
        else if (magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h')
        {
            decompressor = StartDecompressor("bzip2", archive);
            source = decompressor.StandardOutput.BaseStream;
        }
        else if (magic[0] == 0xFD && magic[1] == '7' && magic[2] == 'z' && magic[3] == 'X' && magic[4] == 'Z')
        {
            decompressor = StartDecompressor("xz", archive);
            source = decompressor.StandardOutput.BaseStream;
        }

        try
        {
            var buffered = new List<(string, bool, bool, Func<Stream>?)>();
            await using var reader = new TarReader(source);
            while (await reader.GetNextEntryAsync(copyData: true, ct) is { } entry)
            {
                var isDir = entry.EntryType == TarEntryType.Directory;
                var isFile = entry.EntryType is TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile;
                if (!isDir && !isFile)
                {
                    continue; // links, devices, fifos are skipped
                }

                var data = entry.DataStream;
                var bytes = data is null ? [] : await ReadAllAsync(data, ct);
                var executable = ((int)entry.Mode & 0x49) != 0;
                buffered.Add((entry.Name, isDir, executable, isDir ? null : () => new MemoryStream(bytes)));
            }

            await WriteMembersAsync(buffered, destination, ct);
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException)
        {
            throw new SkillArchiveException($"not a zip or tar archive: {ex.Message}");
        }
        finally
        {
            if (decompressor is not null)
            {
                await decompressor.WaitForExitAsync(ct);
                decompressor.Dispose();
            }

            if (!ReferenceEquals(source, raw))
            {
                await source.DisposeAsync();
            }
        }
    }

    private static Process StartDecompressor(string tool, string archive)
    {
        var psi = new ProcessStartInfo(tool) { ArgumentList = { "-dc", archive }, RedirectStandardOutput = true, UseShellExecute = false };
        try
        {
            return Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new SkillArchiveException($"skill extraction of this archive needs `{tool}` on PATH");
        }
    }

    private static async Task<byte[]> ReadAllAsync(Stream s, CancellationToken ct)
    {
        using var m = new MemoryStream();
        await s.CopyToAsync(m, ct);
        return m.ToArray();
    }

    private static async Task WriteMembersAsync(List<(string Path, bool IsDirectory, bool Executable, Func<Stream>? Open)> members, string destination, CancellationToken ct)
    {
        foreach (var (path, _, _, _) in members)
        {
            var normalized = path.Replace('\\', '/');
            if (normalized.StartsWith('/') || normalized.Split('/').Contains(".."))
            {
                throw new SkillArchiveException($"refusing to extract unsafe archive member: {path}");
            }
        }

        // strip one wrapping directory when every member lives under it and some are nested
        var parts = members.Select(m => m.Path.Replace('\\', '/').TrimStart('.', '/').Split('/', StringSplitOptions.RemoveEmptyEntries)).ToList();
        var tops = parts.Where(p => p.Length > 0).Select(p => p[0]).Distinct().ToList();
        var strip = tops.Count == 1 && parts.Any(p => p.Length > 1) && members.All(m => !(!m.IsDirectory && m.Path.Replace('\\', '/').Trim('/') == tops[0]));
        for (var i = 0; i < members.Count; i++)
        {
            var segments = parts[i];
            if (strip)
            {
                segments = segments.Skip(1).ToArray();
            }

            if (segments.Length == 0)
            {
                continue;
            }

            var target = Path.Combine([destination, .. segments]);
            if (members[i].IsDirectory)
            {
                Directory.CreateDirectory(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                continue;
            }

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            var mode = members[i].Executable
                ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
                : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
            await using var input = members[i].Open!();
            await using var output = new FileStream(target, new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = mode });
            await input.CopyToAsync(output, ct);
            File.SetUnixFileMode(target, mode);
        }
    }
}

/// <summary>A skill archive cannot be extracted safely.</summary>
public sealed class SkillArchiveException : Exception
{
    public SkillArchiveException() { }

    public SkillArchiveException(string message) : base(message) { }

    public SkillArchiveException(string message, Exception innerException) : base(message, innerException) { }
}
