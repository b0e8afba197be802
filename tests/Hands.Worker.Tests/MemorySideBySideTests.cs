using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// Sessions with memory stores, served once by the official TypeScript worker (npm <c>@anthropic-ai/sdk</c> 1.14.0,
/// unmodified, memory sync on) and once by hands-worker, each against its own control plane seeded the same way and
/// mounting the stores at the same path: the same files appear in the sandbox (the tool results are identical), the
/// same changes reach the stores, and the same conflict is reported. The conflict is made while the session waits on a
/// tool confirmation: the test changes a memory in the store that the agent has already rewritten locally.
/// </summary>
public sealed class MemorySideBySideTests
{
    private sealed record Run(List<(string Tool, string Input, bool IsError, string Text)> Results, Dictionary<string, string> Notes,
        Dictionary<string, string> Reference, string Log, bool MountsRemoved);

    private static string Scenario(string mount) => $$$"""
        {"turns":[{"steps":[
          {"tool":"read","input":{"file_path":"{{{mount}}}/notes/prefs.md"}},
          {"tool":"bash","input":{"command":"cd {{{mount}}} && find . -type f | sort && cat notes/deep/a/b.md"}},
          {"tool":"write","input":{"file_path":"{{{mount}}}/notes/prefs.md","content":"likes coffee"}},
          {"tool":"write","input":{"file_path":"{{{mount}}}/notes/new/idea.md","content":"an idea"}},
          {"tool":"edit","input":{"file_path":"{{{mount}}}/notes/conflict.md","old_string":"base","new_string":"local"}},
          {"tool":"bash","input":{"command":"rm {{{mount}}}/notes/old.md && echo removed"}},
          {"tool":"write","input":{"file_path":"{{{mount}}}/reference/facts.md","content":"overwritten"}},
          {"tool":"edit","input":{"file_path":"{{{mount}}}/reference/facts.md","old_string":"wet","new_string":"dry"}},
          {"tool":"read","input":{"file_path":"{{{mount}}}/reference/facts.md"}},
          {"tool":"read","input":{"file_path":"{{{mount}}}/../elsewhere.txt"}},
          {"tool":"bash","input":{"command":"echo waiting for the store to change"},"permission":"ask"},
          {"message":"done"}
        ]}]}
        """;

    private static async Task<Run> ServeAsync(string root, bool official)
    {
        var mount = Path.Combine(root, "mnt");
        var workdir = Path.Combine(root, "work");
        var scenarios = Path.Combine(root, "scenarios");
        foreach (var dir in new[] { workdir, scenarios })
        {
            Directory.CreateDirectory(dir);
        }

        await File.WriteAllTextAsync(Path.Combine(scenarios, "memory.json"), Scenario(mount));
        await using var cp = await TestControlPlane.StartAsync(o =>
        {
            o.MemoryMountRoot = mount;
            o.ScenariosDirectory = scenarios;
        });
        var notes = await cp.App.MemoryStores.CreateAsync(new() { Name = "notes" });
        foreach (var (path, content) in new[] { ("/prefs.md", "likes tea"), ("/old.md", "stale"), ("/conflict.md", "base"), ("/deep/a/b.md", "deep") })
        {
            await cp.App.MemoryStores.CreateMemoryAsync(notes.Id, path, content);
        }

        var reference = await cp.App.MemoryStores.CreateAsync(new() { Name = "reference" });
        await cp.App.MemoryStores.CreateMemoryAsync(reference.Id, "/facts.md", "water is wet");
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:memory");
        var session = await cp.App.Sessions.CreateAsync(new()
        {
            Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
            EnvironmentId = env.Id,
            Resources =
            [
                TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{notes.Id}}","access":"read_write"}"""),
                TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{reference.Id}}","access":"read_only"}"""),
            ],
            InitialEvents = [TestControlPlane.UserMessage("go")],
        });
        var baseUrl = cp.BaseAddress.ToString().TrimEnd('/');

        Task<string> served;
        if (official)
        {
            served = Task.Run(async () =>
            {
                var (exit, _, stderr) = await OfficialSdkScripts.RunNodeAsync("worker-flow.cjs", new()
                {
                    ["HANDS_BASE_URL"] = baseUrl,
                    ["HANDS_ENVIRONMENT_ID"] = env.Id,
                    ["HANDS_ENVIRONMENT_KEY"] = key,
                    ["HANDS_WORKDIR"] = workdir,
                    ["HANDS_MEMORY_SYNC_MS"] = "15000",
                }, TimeSpan.FromSeconds(120), OfficialSdkScripts.Node22);
                Assert.True(exit == 0, stderr);
                return stderr;
            });
        }
        else
        {
            var item = (await cp.Worker(key).Work.PollAsync(env.Id, 500))!;
            await cp.Worker(key).Work.AckAsync(env.Id, item.Id);
            var worker = WorkerProcess.Start(new()
            {
                ["ANTHROPIC_BASE_URL"] = baseUrl,
                ["ANTHROPIC_ENVIRONMENT_ID"] = env.Id,
                ["ANTHROPIC_SESSION_ID"] = item.Data.Id,
                ["ANTHROPIC_WORK_ID"] = item.Id,
                ["ANTHROPIC_WORK_SECRET"] = item.Secret!,
            }, workdir, "run", "--max-idle", "300ms", "--workdir", workdir, "--memory-sync-interval", "15s");
            served = Task.Run(async () =>
            {
                await using (worker)
                {
                    Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(120)));
                    return worker.Log;
                }
            });
        }

        // The session waits on the confirmation: change the memory the agent already edited locally, then allow.
        SessionEvent? ask = null;
        await Eventually.TrueAsync(async () =>
        {
            var all = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
            ask = all.FirstOrDefault(e => e.Type == EventTypes.AgentToolUse && e.EvaluatedPermission == "ask");
            return ask is not null && all.Any(e => TestControlPlane.IsIdle(e, "requires_action") && e.Id != null && all.IndexOf(e) > all.IndexOf(ask));
        }, "the session waits on the confirmation", TimeSpan.FromSeconds(60));
        await foreach (var m in cp.App.MemoryStores.ListAllMemoriesAsync(notes.Id))
        {
            if (m.Path == "/conflict.md")
            {
                await cp.App.MemoryStores.UpdateMemoryAsync(notes.Id, m.Id!, "remote");
            }
        }

        await cp.App.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserToolConfirmation, ToolUseId = ask!.Id, Result = "allow" }]);
        var log = await served;

        var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
        var results = history.Where(e => e.Type == EventTypes.UserToolResult).ToDictionary(e => e.ToolUseId!);
        var calls = history.Where(e => e.Type == EventTypes.AgentToolUse)
            .Select(u => (u.Name!, u.Input!.Value.GetRawText(), results[u.Id!].IsError == true, results[u.Id!].Text))
            .ToList();
        return new Run(calls, await ContentsAsync(cp, notes.Id), await ContentsAsync(cp, reference.Id), log,
            !Directory.Exists(Path.Combine(mount, "notes")) && !Directory.Exists(Path.Combine(mount, "reference")));
    }

    private static async Task<Dictionary<string, string>> ContentsAsync(TestControlPlane cp, string storeId)
    {
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var m in cp.App.MemoryStores.ListAllMemoriesAsync(storeId, MemoryValues.ViewFull))
        {
            all[m.Path] = m.Content!;
        }

        return all;
    }

    [Fact]
    public async Task Memory_stores_behave_as_under_the_official_typescript_worker()
    {
        var root = Path.Combine(Path.GetTempPath(), $"hands-memory-side-by-side-{Environment.ProcessId}");
        try
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }

            var official = await ServeAsync(root, official: true);
            Directory.Delete(root, recursive: true);
            var ours = await ServeAsync(root, official: false);

            Assert.Equal(official.Results.Count, ours.Results.Count);
            for (var i = 0; i < official.Results.Count; i++)
            {
                Assert.True(official.Results[i] == ours.Results[i],
                    $"call {i} ({official.Results[i].Tool} {official.Results[i].Input}) differs:\n official: {official.Results[i].IsError} {official.Results[i].Text}\n hands:    {ours.Results[i].IsError} {ours.Results[i].Text}");
            }

            // What the official worker produced, and that ours produced the same.
            Assert.Equal("likes tea", official.Results[0].Text);
            Assert.Contains("./notes/deep/a/b.md", official.Results[1].Text, StringComparison.Ordinal);
            Assert.Contains("./reference/facts.md", official.Results[1].Text, StringComparison.Ordinal);
            Assert.True(official.Results[6].IsError); // write into the read-only store
            Assert.True(official.Results[7].IsError); // edit too
            Assert.Equal("water is wet", official.Results[8].Text);
            Assert.True(official.Results[9].IsError); // outside the workdir and the permitted directories

            Assert.Equal(new Dictionary<string, string>
            {
                ["/prefs.md"] = "likes coffee",
                ["/new/idea.md"] = "an idea",
                ["/conflict.md"] = "remote",   // changed on both sides: the store wins
                ["/deep/a/b.md"] = "deep",     // /old.md deleted locally: the final sync deletes it in the store
            }, official.Notes);
            Assert.Equal(official.Notes, ours.Notes);
            Assert.Equal(new Dictionary<string, string> { ["/facts.md"] = "water is wet" }, official.Reference);
            Assert.Equal(official.Reference, ours.Reference);

            const string Conflict = "memory changed both locally and remotely; keeping the remote version";
            Assert.Contains(Conflict, official.Log, StringComparison.Ordinal);
            Assert.Contains(Conflict, ours.Log, StringComparison.Ordinal);
            Assert.True(official.MountsRemoved);
            Assert.True(ours.MountsRemoved);
        }
        finally
        {
            if (Directory.Exists(root))
            {
                Directory.Delete(root, recursive: true);
            }
        }
    }
}
