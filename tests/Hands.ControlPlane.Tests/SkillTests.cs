using System.IO.Compression;
using System.Text;
using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

public sealed class SkillTests
{
    private static byte[] Zip(params (string Path, string Content)[] files)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (path, content) in files)
            {
                using var w = new StreamWriter(zip.CreateEntry(path).Open(), Encoding.UTF8);
                w.Write(content);
            }
        }

        return buffer.ToArray();
    }

    [Fact]
    public async Task Upload_then_read_versions_latest_and_content_as_a_worker()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var archive = Zip(("pdf-tools/SKILL.md", "---\nname: pdf-tools\ndescription: Work with PDFs\n---\n# PDF"), ("pdf-tools/run.sh", "#!/bin/sh\necho hi\n"));
        var v1 = await cp.App.Skills.UploadAsync(archive);
        Assert.Equal("pdf-tools", v1.Name);
        Assert.Equal("Work with PDFs", v1.Description);
        Assert.True(v1.Version.All(char.IsAsciiDigit));
        var v2 = await cp.App.Skills.UploadAsync(archive, v1.SkillId);
        Assert.True(long.Parse(v2.Version, System.Globalization.CultureInfo.InvariantCulture) > long.Parse(v1.Version, System.Globalization.CultureInfo.InvariantCulture));

        var (env, key) = await cp.CreateEnvironmentAsync();
        var worker = cp.Worker(key);
        Assert.Equal(2, (await worker.Skills.ListVersionsAsync(v1.SkillId)).Data.Count);
        Assert.Equal(v2.Version, (await worker.Skills.GetVersionAsync(v1.SkillId, "latest")).Version);
        using var downloaded = new MemoryStream();
        await worker.Skills.DownloadVersionContentAsync(v1.SkillId, v1.Version, downloaded);
        Assert.Equal(archive, downloaded.ToArray());

        var agent = await cp.App.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "with-skill",
            Model = TestControlPlane.Json("\"scripted:hello\""),
            Skills = [new AgentSkill { Type = "custom", SkillId = v1.SkillId, Version = "latest" }],
        });
        var session = await cp.CreateSessionAsync(env.Id, agent.Id);
        Assert.Equal(v1.SkillId, Assert.Single(session.Agent.Skills).SkillId);
        var missing = await Assert.ThrowsAsync<Hands.Protocol.Client.ManagedAgentsException>(() => cp.App.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "x",
            Model = TestControlPlane.Json("\"m\""),
            Skills = [new AgentSkill { SkillId = "skill_nope" }],
        }));
        Assert.Contains("skill_nope", missing.Message, StringComparison.Ordinal);
    }
}
