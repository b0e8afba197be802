using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Hands.Worker.Skills;

namespace Hands.Worker.Tests;

public sealed class SkillArchiveTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hands-skill-archive-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string TarGz(params (string Name, string Content, UnixFileMode Mode)[] files)
    {
        var path = Path.Combine(_dir.FullName, Guid.NewGuid().ToString("N") + ".tar.gz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var (name, content, mode) in files)
        {
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, name) { Mode = mode, DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
        }

        return path;
    }

    [Fact]
    public async Task Tar_gz_is_extracted_with_the_wrapper_stripped_and_exec_bits_normalised()
    {
        var archive = TarGz(
            ("wrap/SKILL.md", "# s", UnixFileMode.UserRead | UnixFileMode.UserWrite),
            ("wrap/bin/run.sh", "#!/bin/sh\n", UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
        var dest = Directory.CreateDirectory(Path.Combine(_dir.FullName, "out")).FullName;
        await SkillInstaller.ExtractAsync(archive, dest, CancellationToken.None);
        Assert.True(File.Exists(Path.Combine(dest, "SKILL.md")));
        Assert.Equal((UnixFileMode)Convert.ToInt32("755", 8), File.GetUnixFileMode(Path.Combine(dest, "bin/run.sh")));
        Assert.Equal((UnixFileMode)Convert.ToInt32("644", 8), File.GetUnixFileMode(Path.Combine(dest, "SKILL.md")));
    }

    [Theory]
    [InlineData("../escape.txt")]
    [InlineData("/etc/evil")]
    [InlineData("ok/../../escape.txt")]
    public async Task Unsafe_members_are_refused_and_nothing_escapes(string member)
    {
        var archive = TarGz(("fine.txt", "x", UnixFileMode.UserRead), (member, "x", UnixFileMode.UserRead));
        var dest = Directory.CreateDirectory(Path.Combine(_dir.FullName, "out")).FullName;
        var ex = await Assert.ThrowsAsync<SkillArchiveException>(() => SkillInstaller.ExtractAsync(archive, dest, CancellationToken.None));
        Assert.Equal($"refusing to extract unsafe archive member: {member}", ex.Message);
        Assert.False(File.Exists(Path.Combine(_dir.FullName, "escape.txt")));
        Assert.Empty(Directory.GetFileSystemEntries(dest));
    }

    [Fact]
    public async Task Zip_without_a_wrapper_keeps_its_layout()
    {
        var path = Path.Combine(_dir.FullName, "s.zip");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            foreach (var name in new[] { "SKILL.md", "lib/a.py" })
            {
                using var w = new StreamWriter(zip.CreateEntry(name).Open());
                w.Write(name);
            }
        }

        var dest = Directory.CreateDirectory(Path.Combine(_dir.FullName, "out")).FullName;
        await SkillInstaller.ExtractAsync(path, dest, CancellationToken.None);
        Assert.Equal("lib/a.py", File.ReadAllText(Path.Combine(dest, "lib/a.py")));
    }
}
