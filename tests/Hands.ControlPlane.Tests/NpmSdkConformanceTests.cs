using System.Diagnostics;
using System.Text.Json;
using Hands.Protocol.Models;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>
/// The official npm package <c>@anthropic-ai/sdk</c> 1.14.0, unmodified, against <c>hands control-plane</c>: the app
/// side (environment, agent, session, stream, send, list) and the official TypeScript EnvironmentWorker executing a
/// scripted turn with bash, read, write, edit and grep. The package is installed by scripts/test.sh
/// (<c>npm ci</c> in tests/conformance). Node 20 limits: the toolset's glob tool needs Node 22 (native fs.glob), so
/// the scripted turn leaves glob out.
/// </summary>
public sealed class NpmSdkConformanceTests
{
    [Fact]
    public async Task The_official_sdk_drives_the_app_side()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("app-flow.cjs", new()
        {
            ["HANDS_BASE_URL"] = cp.BaseAddress.ToString().TrimEnd('/'),
            ["HANDS_API_KEY"] = TestControlPlane.ApiKey,
        }, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        var result = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.True(result.GetProperty("environment").GetProperty("sameOnRetrieve").GetBoolean());
        Assert.Equal("self_hosted", result.GetProperty("environment").GetProperty("config").GetProperty("type").GetString());
        Assert.Equal(1, result.GetProperty("agent").GetProperty("version").GetInt32());
        Assert.Equal("idle", result.GetProperty("session").GetProperty("status").GetString());
        Assert.Equal("from npm", result.GetProperty("session").GetProperty("title").GetString());
        var streamed = result.GetProperty("streamedTypes").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(["user.message", "session.status_running"], streamed.Take(2));
        Assert.Equal("session.status_idle", streamed[^1]);
        Assert.Equal("Hello! I am a scripted agent; I run no tools.", result.GetProperty("agentText")[0].GetString());
        var listed = result.GetProperty("listedTypes").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(streamed, listed); // paged through with limit=2, oldest first, same events
        Assert.Equal(result.GetProperty("sentIds")[0].GetString(), result.GetProperty("listedIds")[0].GetString());
        Assert.Equal(1, result.GetProperty("queueDepth").GetInt32()); // creating the session queued one work item
        Assert.Equal("not_found_error", result.GetProperty("notFoundType").GetString());
    }

    /// <summary>
    /// The SDK reads the event shapes newer than the first reference as the service sends them: a thread created for a
    /// workflow run, the run's <c>workflow_run.*</c> events, a refusal's <c>stop_details</c>, <c>stop_details: null</c> on
    /// any other idle, and a <c>session.error</c> of a new type with its <c>retry_status</c>.
    /// </summary>
    [Fact]
    public async Task The_official_sdk_reads_workflow_runs_refusals_and_new_error_types()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("newer-events-flow.cjs", new()
        {
            ["HANDS_BASE_URL"] = cp.BaseAddress.ToString().TrimEnd('/'),
            ["HANDS_API_KEY"] = TestControlPlane.ApiKey,
        }, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        var result = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
        var first = result.GetProperty("firstTypes").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Equal(["session.thread_created", "workflow_run.created", "workflow_run.status_running", "workflow_run.phase_started",
            "workflow_run.phase_ended", "workflow_run.status_ended"], first.SkipWhile(t => t != "session.thread_created").Take(6));
        Assert.Equal("session.status_idle", first[^1]);
        var refusal = result.GetProperty("refusalDetails");
        Assert.Equal("refusal", refusal.GetProperty("type").GetString());
        Assert.Equal("cyber", refusal.GetProperty("category").GetString());
        Assert.Equal("The request asked for a working exploit.", refusal.GetProperty("explanation").GetString());
        Assert.Equal("wfrun_scripted_1", result.GetProperty("threadWorkflowRunId").GetString());
        Assert.Equal("research", result.GetProperty("workflowPhases")[0].GetProperty("name").GetString());
        var error = result.GetProperty("error");
        Assert.Equal("tool_use_limit_reached_error", error.GetProperty("type").GetString());
        Assert.Equal("exhausted", error.GetProperty("retry_status").GetProperty("type").GetString());
        Assert.True(result.GetProperty("exhaustedDetailsIsNull").GetBoolean());
        var listed = result.GetProperty("listedTypes").EnumerateArray().Select(e => e.GetString()).ToList();
        Assert.Contains("workflow_run.phase_ended", listed);
        Assert.Equal(2, listed.Count(t => t == "session.status_idle"));
    }

    [Fact]
    public async Task The_official_typescript_worker_runs_a_scripted_turn_to_end_turn()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, key) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:toolbox");
        var session = await cp.CreateSessionAsync(env.Id, agent.Id, "exercise the tools");
        var workdir = Directory.CreateTempSubdirectory("hands-conformance-");
        try
        {
            var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("worker-flow.cjs", new()
            {
                ["HANDS_BASE_URL"] = cp.BaseAddress.ToString().TrimEnd('/'),
                ["HANDS_ENVIRONMENT_ID"] = env.Id,
                ["HANDS_ENVIRONMENT_KEY"] = key,
                ["HANDS_WORKDIR"] = workdir.FullName,
            }, TimeSpan.FromSeconds(120));
            Assert.True(exit == 0, stderr);
            Assert.Contains("\"handled\":1", stdout, StringComparison.Ordinal);

            var history = await cp.App.Events.ListAllAsync(session.Id).ToListAsync();
            var uses = history.Where(e => e.Type == EventTypes.AgentToolUse).ToList();
            var results = history.Where(e => e.Type == EventTypes.UserToolResult).ToDictionary(e => e.ToolUseId!);
            Assert.Equal(9, uses.Count);
            Assert.All(uses, u => Assert.True(results.ContainsKey(u.Id!), $"no result for {u.Name}"));
            string Result(int i) => results[uses[i].Id!].Text;
            bool Error(int i) => results[uses[i].Id!].IsError == true;

            Assert.Equal("alpha\nbeta\ngamma\n", Result(1));                     // read what write wrote
            Assert.Equal("BETA", Result(3));                                     // view_range [2,2] after the edit
            Assert.Contains("gamma", Result(4), StringComparison.Ordinal);       // grep
            Assert.Equal("sum=42\n3", Result(5));                                // bash
            Assert.True(Error(6));                                               // bash exit 3
            Assert.True(Error(7));                                               // read of a missing file
            Assert.True(Error(8));                                               // edit with no match
            Assert.False(Error(0) || Error(1) || Error(2) || Error(3) || Error(4) || Error(5));
            Assert.Equal("alpha\nBETA\ngamma\n", await File.ReadAllTextAsync(Path.Combine(workdir.FullName, "notes", "todo.txt")));

            Assert.Equal("bash said: sum=42\n3", history.Last(e => e.Type == EventTypes.AgentMessage).Text);
            Assert.Equal("end_turn", history.Last(e => e.Type == EventTypes.StatusIdle).StopReason!.Type);
            var work = (await cp.Worker(key).Work.ListAsync(env.Id)).Data.Single();
            Assert.Equal("stopped", work.State); // the official worker force-stopped its item at the end
            Assert.NotNull(work.StartedAt);
        }
        finally
        {
            workdir.Delete(recursive: true);
        }
    }
}
