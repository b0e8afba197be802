using System.Text.Json;
using Hands.Orchestrator;
using Hands.Protocol.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// Memory stores on the whole local stack: the orchestrator spawns the session's sandbox, hands-worker inside it
/// downloads the session's stores to their mount paths with nothing but its sessions token, the agent's tools read and
/// change them there, and the worker's sync brings a read-write store's change back while a read-only store keeps its
/// content.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class MemoryStoreSessionTests(EngineFixture engine)
{
    private const string Scenario = """
        {"turns":[{"steps":[
          {"tool":"bash","input":{"command":"cat /mnt/memory/team-notes/plan.md /mnt/memory/house-rules/rules.md; echo 'step 2: ship it' >> /mnt/memory/team-notes/plan.md; echo appended"}},
          {"tool":"write","input":{"file_path":"/mnt/memory/house-rules/rules.md","content":"overwritten"}},
          {"message":"noted"}
        ]}]}
        """;

    [Fact]
    public async Task A_sessions_memory_stores_reach_its_sandbox_and_a_read_write_change_syncs_back()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine, "memory", Scenario);
        var notes = await cp.Client.MemoryStores.CreateAsync(new MemoryStoreRequest { Name = "team-notes" });
        var plan = await cp.Client.MemoryStores.CreateMemoryAsync(notes.Id, "/plan.md", "step 1: write it\n");
        var rules = await cp.Client.MemoryStores.CreateAsync(new MemoryStoreRequest { Name = "house-rules" });
        var rule = await cp.Client.MemoryStores.CreateMemoryAsync(rules.Id, "/rules.md", "be kind\n");
        var session = await cp.CreateSessionAsync(resources:
        [
            JsonDocument.Parse($$"""{"type":"memory_store","memory_store_id":"{{notes.Id}}","access":"read_write"}""").RootElement,
            JsonDocument.Parse($$"""{"type":"memory_store","memory_store_id":"{{rules.Id}}","access":"read_only"}""").RootElement,
        ]);
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options());
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "use your memory"));
            var results = await cp.ToolResultsAsync(session);
            // Both stores were in the sandbox before the first tool call, at the mount paths the session reports.
            Assert.Equal("step 1: write it\nbe kind\nappended", results[0].Trim());
            // The read-only store refuses the agent's write.
            Assert.Contains("read-only", results[1], StringComparison.OrdinalIgnoreCase);

            // The worker exits after its idle time and flushes on the way out; the change is then in the store.
            await orchestrator.WhenIdleAsync();
            var synced = await WaitForContentAsync(cp, notes.Id, plan.Id!, "step 1: write it\nstep 2: ship it\n");
            Assert.Equal("step 1: write it\nstep 2: ship it\n", synced);
            Assert.Equal("be kind\n", (await cp.Client.MemoryStores.GetMemoryAsync(rules.Id, rule.Id!)).Content);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }

    /// <summary>The memory's content once it equals <paramref name="expected"/>, or its last content after a bounded wait.</summary>
    private static async Task<string?> WaitForContentAsync(LocalControlPlane cp, string storeId, string memoryId, string expected)
    {
        string? content = null;
        for (var attempt = 0; attempt < 120 && content != expected; attempt++)
        {
            if (attempt > 0)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500));
            }

            content = (await cp.Client.MemoryStores.GetMemoryAsync(storeId, memoryId)).Content;
        }

        return content;
    }
}
