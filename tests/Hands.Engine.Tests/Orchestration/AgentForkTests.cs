using System.Text.Json;
using Hands.Forking;
using Hands.Orchestrator;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// An agent forks its own sandbox from inside a session, both ways: the worker's custom tool <c>fork_explore</c>
/// (memory checkpoint, adopting the winner) and <c>hands-fork</c> from bash; and its key forks nothing else.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class AgentForkTests(EngineFixture engine)
{
    private const string Scenario = """
        {"turns":[{"steps":[
          {"tool":"bash","input":{"command":"printf 'echo $(($1 - $2))\\n' > add.sh && printf 'test \"$(sh add.sh 2 3)\" = 5\\n' > test.sh && echo ready"}},
          {"tool":"fork_explore","custom":true,"input":{"snapshot_type":"memory","adopt":true,"branches":[
            {"name":"times","command":"sed -i 's/-/*/' add.sh && sh test.sh"},
            {"name":"plus","command":"sed -i 's/-/+/' add.sh && sh test.sh"}]}},
          {"tool":"bash","input":{"command":"sh test.sh && echo adopted-fix-passes; env | grep -c '^HANDS_FORK_KEY=' ; env | grep -c '^HANDS_FORK_POLICY=' || true"}},
          {"tool":"bash","input":{"command":"hands-fork --json ok='echo from-ok' bad='exit 4' 2>/dev/null"}},
          {"tool":"bash","input":{"command":"python3 -c \"import os,urllib.request as u,urllib.error as e\ntry: u.urlopen(u.Request(os.environ['HANDS_FORK_API_URL']+'/sandboxes',headers={'Authorization':'Bearer '+os.environ['HANDS_FORK_KEY']})); print('allowed')\nexcept e.HTTPError as x: print(x.code)\""}},
          {"tool":"bash","input":{"command":"cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^ANTHROPIC_ENVIRONMENT_KEY=' || true"}},
          {"message":"explored"}
        ]}]}
        """;

    [Fact]
    public async Task An_agent_forks_its_own_sandbox_through_the_custom_tool_and_through_hands_fork()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine, "agent-fork", Scenario);
        var agent = await cp.CreateAgentAsync("forking-agent", "agent-fork",
            [$$"""{"type":"custom","name":"{{ForkExploreToolDefinition.Name}}","description":"{{ForkExploreToolDefinition.Description}}","input_schema":{{ForkExploreToolDefinition.InputSchema}}}"""]);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(o => o.ForkAccess = WorkerForkAccess.Bash));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync(agent);
        var name = SandboxNames.ForSession(session);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "fix add", TimeSpan.FromSeconds(180)));
            var custom = new List<string>();
            await foreach (var e in cp.Client.Events.ListAllAsync(session))
            {
                if (e.Type == EventTypes.UserCustomToolResult)
                {
                    custom.Add(e.Text);
                }
            }

            var report = JsonDocument.Parse(Assert.Single(custom)).RootElement;
            Assert.Equal("plus", report.GetProperty("winner").GetString());
            Assert.Equal("memory", report.GetProperty("snapshot_type").GetString());
            var results = await cp.ToolResultsAsync(session);
            Assert.Equal("adopted-fix-passes\n1\n0", results[1].Trim());
            var helper = JsonDocument.Parse(results[2]).RootElement;
            Assert.Equal("ok", helper.GetProperty("winner").GetString());
            Assert.Equal("403", results[3].Trim());
            Assert.Equal("0", results[4].Trim()); // the worker is not dumpable: bash cannot read its environment

            // Nothing the forks made outlives them.
            await foreach (var sandbox in engine.Client.ListAllAsync(Hands.Sandboxes.Models.SandboxStatus.Running))
            {
                Assert.False(sandbox.Name?.StartsWith("fork-", StringComparison.Ordinal) == true, $"fork {sandbox.Name} was left running");
            }

            var parentId = (await engine.Client.GetAsync(name)).CanonicalId;
            Assert.DoesNotContain(await engine.Client.ListSnapshotsAsync(), s => s.SandboxId == parentId);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(name);
        }
    }
}
