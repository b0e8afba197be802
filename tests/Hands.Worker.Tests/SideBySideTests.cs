using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// The same scripted sessions served once by the official TypeScript worker (<c>@anthropic-ai/sdk</c> 1.14.0,
/// unmodified) and once by hands-worker, in the same workdir path: every <c>user.tool_result</c> must be identical,
/// error flag and text. The official worker runs on Node 22 (<see cref="OfficialSdkScripts.Node22"/>), since its glob
/// is Node 22's <c>fs.glob</c>; <c>glob-cases</c> compares glob for real: dot files, <c>**</c>, braces, classes, links,
/// excluded directories, path normalisation and the 200-result limit, over a tree whose files all differ in mtime.
/// </summary>
public sealed class SideBySideTests
{
    private static async Task<List<(string Tool, string Input, bool IsError, string Text)>> ServeAsync(string scenario, string workdir, bool official)
    {
        if (Directory.Exists(workdir))
        {
            Directory.Delete(workdir, recursive: true);
        }

        Directory.CreateDirectory(workdir);
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:" + scenario);
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "go");
        var baseUrl = cp.BaseAddress.ToString().TrimEnd('/');
        if (official)
        {
            var (exit, _, stderr) = await OfficialSdkScripts.RunNodeAsync("worker-flow.cjs", new()
            {
                ["HANDS_BASE_URL"] = baseUrl,
                ["HANDS_ENVIRONMENT_ID"] = env.Id,
                ["HANDS_ENVIRONMENT_KEY"] = key,
                ["HANDS_WORKDIR"] = workdir,
            }, TimeSpan.FromSeconds(120), OfficialSdkScripts.Node22);
            Assert.True(exit == 0, stderr);
        }
        else
        {
            var item = (await cp.Worker(key).Work.PollAsync(env.Id, 500))!;
            await cp.Worker(key).Work.AckAsync(env.Id, item.Id);
            await using var worker = WorkerProcess.Start(new()
            {
                ["ANTHROPIC_BASE_URL"] = baseUrl,
                ["ANTHROPIC_ENVIRONMENT_ID"] = env.Id,
                ["ANTHROPIC_ENVIRONMENT_KEY"] = key,
                ["ANTHROPIC_SESSION_ID"] = item.Data.Id,
                ["ANTHROPIC_WORK_ID"] = item.Id,
                ["ANTHROPIC_WORK_SECRET"] = item.Secret!,
            }, workdir, "run", "--max-idle", "300ms", "--workdir", workdir);
            Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(120)));
        }

        var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
        Assert.Equal("end_turn", history.Last(e => e.Type == EventTypes.StatusIdle).StopReason!.Type);
        var results = history.Where(e => e.Type == EventTypes.UserToolResult).ToDictionary(e => e.ToolUseId!);
        return history.Where(e => e.Type == EventTypes.AgentToolUse)
            .Select(u => (u.Name!, u.Input!.Value.GetRawText(), results[u.Id!].IsError == true, results[u.Id!].Text))
            .ToList();
    }

    [Theory]
    [InlineData("toolbox")]
    [InlineData("edge-cases")]
    [InlineData("glob-cases")]
    public async Task Tool_results_are_identical_to_the_official_typescript_workers(string scenario)
    {
        var workdir = Path.Combine(Path.GetTempPath(), $"hands-side-by-side-{Environment.ProcessId}-{scenario}");
        try
        {
            var official = await ServeAsync(scenario, workdir, official: true);
            var ours = await ServeAsync(scenario, workdir, official: false);
            Assert.Equal(official.Count, ours.Count);
            // An official glob that errors for want of fs.glob (an older Node) would make every comparison meaningless.
            Assert.DoesNotContain(official, r => r.Tool == "glob" && r.Text.Contains("fsGlob", StringComparison.Ordinal));
            if (scenario == "glob-cases")
            {
                Assert.Contains(official, r => r.Tool == "glob" && !r.IsError && r.Text.Contains('\n', StringComparison.Ordinal));
            }

            for (var i = 0; i < official.Count; i++)
            {
                Assert.True(official[i] == ours[i],
                    $"call {i} ({official[i].Tool} {official[i].Input}) differs:\n official: {official[i].IsError} {Show(official[i].Text)}\n hands:    {ours[i].IsError} {Show(ours[i].Text)}");
            }
        }
        finally
        {
            if (Directory.Exists(workdir))
            {
                Directory.Delete(workdir, recursive: true);
            }
        }
    }

    private static string Show(string text) => System.Text.Json.JsonSerializer.Serialize(text.Length > 300 ? text[..150] + "…" + text[^150..] : text);
}
