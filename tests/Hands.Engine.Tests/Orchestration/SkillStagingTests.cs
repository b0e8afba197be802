using System.IO.Compression;
using System.Text.Json;
using Hands.Orchestrator;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// A session's worker holds only its sessions token, which the skills API refuses: the orchestrator stages the agent's
/// skills into the sandbox and the worker installs them from there, executable and usable, then removes them.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SkillStagingTests(EngineFixture engine)
{
    [Fact]
    public async Task The_orchestrator_stages_skills_a_token_only_worker_cannot_download()
    {
        const string scenario = """{"turns":[{"steps":[{"tool":"bash","input":{"command":"ls -l skills/greeter/bin/greet.sh | cut -c1-10; skills/greeter/bin/greet.sh; ls /run/hands-skills | wc -l"}},{"message":"used it"}]}]}""";
        await using var cp = await LocalControlPlane.StartAsync(engine, "use-skill", scenario);
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            await using (var md = new StreamWriter(zip.CreateEntry("greeter-v1/SKILL.md").Open()))
            {
                await md.WriteAsync("---\nname: greeter\ndescription: says hi\n---\n");
            }

            var script = zip.CreateEntry("greeter-v1/bin/greet.sh");
            script.ExternalAttributes = Convert.ToInt32("100755", 8) << 16;
            await using (var sh = new StreamWriter(script.Open()))
            {
                await sh.WriteAsync("#!/bin/sh\necho hi from a staged skill\n");
            }
        }

        var skill = await cp.Client.Skills.UploadAsync(buffer.ToArray());
        var agent = await cp.CreateAgentAsync("skilled", "use-skill", skills: [new AgentSkill { SkillId = skill.SkillId, Version = "latest" }]);
        var session = await cp.CreateSessionAsync(agent);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "greet"));
            // Executable, it ran, and the staged copies were consumed.
            Assert.Equal("-rwxr-xr-x\nhi from a staged skill\n0", (await cp.ToolResultsAsync(session)).Single().Trim());
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }
}
