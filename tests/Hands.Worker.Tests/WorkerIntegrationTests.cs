using System.IO.Compression;
using System.Text;
using Hands.Testing;
using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Worker.Tests;

/// <summary>A real hands-worker process against a real control plane over loopback HTTP.</summary>
public sealed class WorkerIntegrationTests
{
    /// <summary>What the worker logs once its stream is open and the history read: nothing in the session can be missed after it.</summary>
    private const string Attached = "attached: stream open, history reconciled";

    private sealed class Stage : IAsyncDisposable
    {
        public required TestControlPlane Cp { get; init; }
        public required AgentEnvironment Env { get; init; }
        public required string Key { get; init; }
        public required DirectoryInfo Workdir { get; init; }
        public ManagedAgentsClient Worker => Cp.Worker(Key);

        public static async Task<Stage> StartAsync(Action<Hands.ControlPlane.ControlPlaneOptions>? configure = null)
        {
            var cp = await TestControlPlane.StartAsync(configure);
            var (env, key) = await cp.CreateEnvironmentAsync();
            return new Stage { Cp = cp, Env = env, Key = key, Workdir = Directory.CreateTempSubdirectory("hands-worker-it-") };
        }

        /// <summary>Claims the session's item as an orchestrator would, and returns what <c>hands-worker run</c> needs.</summary>
        public async Task<Dictionary<string, string>> ClaimAsync(Uri? baseUrl = null, bool withEnvironmentKey = false)
        {
            var item = await Worker.Work.PollAsync(Env.Id, 500) ?? throw new InvalidOperationException("nothing queued");
            await Worker.Work.AckAsync(Env.Id, item.Id);
            var env = new Dictionary<string, string>
            {
                ["ANTHROPIC_BASE_URL"] = (baseUrl ?? Cp.BaseAddress).ToString().TrimEnd('/'),
                ["ANTHROPIC_ENVIRONMENT_ID"] = Env.Id,
                ["ANTHROPIC_SESSION_ID"] = item.Data.Id,
                ["ANTHROPIC_WORK_ID"] = item.Id,
                ["ANTHROPIC_WORK_SECRET"] = item.Secret!,
            };
            if (withEnvironmentKey)
            {
                env["ANTHROPIC_ENVIRONMENT_KEY"] = Key;
            }

            return env;
        }

        /// <summary>A session with nothing to do, and a worker attached to it that never idles out.</summary>
        public async Task<(string SessionId, string WorkId, WorkerProcess Worker)> StartAttachedWorkerAsync()
        {
            var agent = await Cp.CreateAgentAsync("scripted:hello", "[]");
            var session = await Cp.CreateSessionAsync(Env.Id, agent.Id);
            var env = await ClaimAsync();
            var worker = WorkerProcess.Start(env, Workdir.FullName, "run", "--max-idle", "0", "--workdir", Workdir.FullName);
            await worker.WaitForLogAsync(Attached, TimeSpan.FromSeconds(30));
            return (session.Id, env["ANTHROPIC_WORK_ID"], worker);
        }

        public async ValueTask DisposeAsync()
        {
            await Cp.DisposeAsync();
            Workdir.Delete(recursive: true);
        }
    }

    private static async Task<List<SessionEvent>> HistoryAsync(Stage s, string sessionId) =>
        await s.Cp.App.Events.ListAllAsync(sessionId).ToListAsync();

    private static Dictionary<string, SessionEvent> Results(List<SessionEvent> history) =>
        history.Where(e => e.Type is EventTypes.UserToolResult or EventTypes.UserCustomToolResult)
            .ToDictionary(e => e.ToolUseId ?? e.CustomToolUseId!);

    [Fact]
    public async Task Run_with_only_the_work_secret_serves_the_session_and_force_stops_its_item()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:toolbox");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        // The skills API refuses a sessions token; a worker outside a sandbox that holds the environment key downloads
        // with it (in a sandbox the orchestrator stages them: SkillStagingTests).
        var env = await s.ClaimAsync(withEnvironmentKey: true);
        await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));

        var history = await HistoryAsync(s, session.Id);
        var uses = history.Where(e => e.Type == EventTypes.AgentToolUse).ToList();
        var results = Results(history);
        Assert.Equal(9, uses.Count);
        Assert.Equal("sum=42\n3", results[uses[5].Id!].Text);
        Assert.Equal("bash: bash session terminated", results[uses[6].Id!].Text);
        Assert.Equal("bash said: sum=42\n3", history.Last(e => e.Type == EventTypes.AgentMessage).Text);
        Assert.Equal("stopped", (await s.Cp.App.Work.GetAsync(s.Env.Id, env["ANTHROPIC_WORK_ID"])).State);
        Assert.Contains("session idle after its turn ended; stopping", worker.Log, StringComparison.Ordinal);
        Assert.DoesNotContain(env["ANTHROPIC_WORK_SECRET"], worker.Log, StringComparison.Ordinal);
        Assert.DoesNotContain(s.Key, worker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Poll_serves_sessions_in_process_and_stops_cleanly_on_sigterm()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:demo");
        var first = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "one");
        await using var worker = WorkerProcess.Start(new()
        {
            ["ANTHROPIC_BASE_URL"] = s.Cp.BaseAddress.ToString().TrimEnd('/'),
            ["ANTHROPIC_ENVIRONMENT_ID"] = s.Env.Id,
            ["ANTHROPIC_ENVIRONMENT_KEY"] = s.Key,
        }, s.Workdir.FullName, "poll", "--max-idle", "200ms", "--log-format", "json", "--worker-id", "it-worker");
        var done = await TestControlPlane.CollectAsync(s.Cp.App, first.Id, e => TestControlPlane.IsIdle(e, "end_turn"),
            (await s.Cp.App.Events.ListAsync(first.Id, limit: 1)).Data[0].Id, TimeSpan.FromSeconds(60));
        Assert.Equal("hello.txt contains: hi from the sandbox", done.Last(e => e.Type == EventTypes.AgentMessage).Text);
        Assert.Equal("hi from the sandbox", await File.ReadAllTextAsync(Path.Combine(s.Workdir.FullName, "hello.txt")));
        Assert.Equal(1, (await s.Cp.App.Work.StatsAsync(s.Env.Id)).WorkersPolling);

        worker.Terminate();
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("\"msg\":\"poller starting\"", worker.Log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ask_calls_wait_for_the_users_confirmation_and_denied_calls_never_run()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:permissions");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        // The skills API refuses a sessions token; a worker outside a sandbox that holds the environment key downloads
        // with it (in a sandbox the orchestrator stages them: SkillStagingTests).
        var env = await s.ClaimAsync(withEnvironmentKey: true);
        await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        await worker.WaitForLogAsync("tool call awaiting confirmation; holding", TimeSpan.FromSeconds(30));
        var ask = (await HistoryAsync(s, session.Id)).Single(e => e.Type == EventTypes.AgentToolUse);
        Assert.Empty(Results(await HistoryAsync(s, session.Id))); // held, not run
        await s.Cp.App.Events.SendAsync(session.Id, [new SessionEvent { Type = EventTypes.UserToolConfirmation, ToolUseId = ask.Id, Result = "allow" }]);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));
        var history = await HistoryAsync(s, session.Id);
        var results = Results(history);
        Assert.Equal("approved", results[ask.Id!].Text);
        Assert.Single(results); // the denied call got nothing from the worker
        Assert.Equal("first: approved / second error: true", history.Last(e => e.Type == EventTypes.AgentMessage).Text);
    }

    [Fact]
    public async Task Custom_tools_from_a_manifest_get_the_input_on_stdin()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:custom-tool",
            """[{"type":"custom","name":"get_weather","description":"Weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}]""");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "weather?");
        var manifest = Path.Combine(s.Workdir.FullName, "..", $"tools-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(manifest, """
            {"tools":[{"name":"get_weather","description":"Weather","input_schema":{"type":"object"},
              "command":["/bin/bash","-c","python3 -c 'import json,sys; print(\"sunny in \" + json.load(sys.stdin)[\"city\"])'"]}]}
            """);
        try
        {
            var env = await s.ClaimAsync();
            await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--tools", manifest, "--workdir", s.Workdir.FullName);
            Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Equal("The weather tool said: sunny in Lisbon", (await HistoryAsync(s, session.Id)).Last(e => e.Type == EventTypes.AgentMessage).Text);
        }
        finally
        {
            File.Delete(manifest);
        }
    }

    [Fact]
    public async Task Skills_are_downloaded_executable_usable_and_removed_at_teardown()
    {
        var scenarios = Directory.CreateTempSubdirectory("hands-scenarios-");
        await File.WriteAllTextAsync(Path.Combine(scenarios.FullName, "use-skill.json"),
            """{"turns":[{"steps":[{"tool":"bash","input":{"command":"ls -l skills/greeter/bin/greet.sh | cut -c1-10; skills/greeter/bin/greet.sh"}}]}]}""");
        await using var s = await Stage.StartAsync(o => o.ScenariosDirectory = scenarios.FullName);
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            var md = zip.CreateEntry("greeter-v1/SKILL.md");
            await using (var w = new StreamWriter(md.Open()))
            {
                await w.WriteAsync("---\nname: greeter\ndescription: says hi\n---\n");
            }

            var script = zip.CreateEntry("greeter-v1/bin/greet.sh");
            script.ExternalAttributes = Convert.ToInt32("100755", 8) << 16;
            await using (var w = new StreamWriter(script.Open()))
            {
                await w.WriteAsync("#!/bin/sh\necho hi from a skill\n");
            }
        }

        var skill = await s.Cp.App.Skills.UploadAsync(buffer.ToArray());
        var agent = await s.Cp.App.Agents.CreateAsync(new CreateAgentRequest
        {
            Name = "skilled",
            Model = TestControlPlane.Json("\"scripted:use-skill\""),
            Tools = [TestControlPlane.Json("""{"type":"agent_toolset_20260401"}""")],
            Skills = [new AgentSkill { SkillId = skill.SkillId, Version = "latest" }],
        });
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        // The skills API refuses a sessions token; a worker outside a sandbox that holds the environment key downloads
        // with it (in a sandbox the orchestrator stages them: SkillStagingTests).
        var env = await s.ClaimAsync(withEnvironmentKey: true);
        await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));
        var result = Results(await HistoryAsync(s, session.Id)).Values.Single();
        Assert.Equal("-rwxr-xr-x\nhi from a skill", result.Text);
        Assert.False(Directory.Exists(Path.Combine(s.Workdir.FullName, "skills", "greeter")));
        scenarios.Delete(recursive: true);
    }

    [Fact]
    public async Task Cutting_every_connection_mid_session_loses_and_duplicates_nothing()
    {
        await using var s = await Stage.StartAsync();
        await using var cutter = new TcpCutter(s.Cp.BaseAddress);
        var agent = await s.Cp.CreateAgentAsync("scripted:demo");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id);
        var env = await s.ClaimAsync(cutter.Address);
        await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "0", "--workdir", s.Workdir.FullName);
        await worker.WaitForLogAsync(Attached, TimeSpan.FromSeconds(30));
        cutter.CutAll(); // like a checkpoint/restore of the sandbox
        await worker.WaitForLogAsync("stream disconnected, reconnecting", TimeSpan.FromSeconds(30));
        cutter.CutAll();
        var sent = await s.Cp.App.Events.SendAsync(session.Id, [TestControlPlane.UserMessage("go")]);
        var events = await TestControlPlane.CollectAsync(s.Cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"), sent[0].Id, TimeSpan.FromSeconds(60));
        Assert.Equal("hello.txt contains: hi from the sandbox", events.Last(e => e.Type == EventTypes.AgentMessage).Text);
        var history = await HistoryAsync(s, session.Id);
        Assert.Equal(2, history.Count(e => e.Type == EventTypes.UserToolResult)); // exactly one result per call
        Assert.Contains("stream disconnected, reconnecting", worker.Log, StringComparison.Ordinal);
        Assert.False(worker.HasExited);
    }

    [Fact]
    public async Task A_killed_workers_call_is_not_run_again_by_its_replacement_and_what_it_left_running_is_stopped()
    {
        var scenarios = Directory.CreateTempSubdirectory("hands-scenarios-");
        var marker = $"sleep 30.{Random.Shared.Next(100, 999)}";
        await File.WriteAllTextAsync(Path.Combine(scenarios.FullName, "slow.json"), $$$"""
            {"turns":[{"steps":[
              {"tool":"bash","input":{"command":"echo started >> runs.txt; {{{marker}}}; echo finished >> runs.txt"}},
              {"tool":"bash","input":{"command":"echo second"}},
              {"message":"{{results[0].text}} | {{results[1].text}}"}]}]}
            """);
        await using var s = await Stage.StartAsync(o =>
        {
            o.ScenariosDirectory = scenarios.FullName;
            o.LeaseTtl = TimeSpan.FromSeconds(2);
        });
        var state = Directory.CreateTempSubdirectory("hands-worker-state-");
        var agent = await s.Cp.CreateAgentAsync("scripted:slow");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        var env = await s.ClaimAsync();
        env["HANDS_WORKER_STATE_DIR"] = state.FullName;
        var runs = Path.Combine(s.Workdir.FullName, "runs.txt");
        await using (var doomed = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName))
        {
            await doomed.WaitForLogAsync("executing tool", TimeSpan.FromSeconds(30));
            await Eventually.TrueAsync(() => File.Exists(runs) && ProcessesRunning(marker) > 0, "the first command to start", TimeSpan.FromSeconds(30));
            doomed.KillWorkerOnly(); // as SIGKILL or the OOM killer would: bash and its command live on
        }

        Assert.Equal(1, ProcessesRunning(marker)); // the orphan the issue describes: the step goes on, unseen

        // the lease lapses, the item is queued again, a new worker takes it and finishes
        Dictionary<string, string>? again = null;
        for (var i = 0; i < 50 && again is null; i++)
        {
            try
            {
                again = await s.ClaimAsync();
            }
            catch (InvalidOperationException)
            {
                await Task.Delay(200);
            }
        }

        Assert.NotNull(again);
        Assert.Equal(env["ANTHROPIC_WORK_ID"], again["ANTHROPIC_WORK_ID"]);
        again["HANDS_WORKER_STATE_DIR"] = state.FullName;
        await using var replacement = WorkerProcess.Start(again, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        Assert.Equal(0, await replacement.WaitAsync(TimeSpan.FromSeconds(60)));

        var history = await HistoryAsync(s, session.Id);
        var results = history.Where(e => e.Type == EventTypes.UserToolResult).ToList();
        Assert.Equal(2, results.Count);
        Assert.True(results[0].IsError);
        Assert.Contains("interrupted", results[0].Text, StringComparison.Ordinal);
        Assert.Contains("may or may not have completed", results[0].Text, StringComparison.Ordinal);
        Assert.EndsWith("| second", history.Last(e => e.Type == EventTypes.AgentMessage).Text, StringComparison.Ordinal);
        Assert.Equal("started\n", await File.ReadAllTextAsync(runs)); // run once, never again, and stopped where it was
        Assert.Equal(0, ProcessesRunning(marker)); // stopped before the interruption was posted
        Assert.Contains("not running it again", replacement.Log, StringComparison.Ordinal);
        Assert.Empty(state.GetFiles("*.journal", SearchOption.AllDirectories)); // nothing outstanding: the journal is gone
        scenarios.Delete(recursive: true);
        state.Delete(recursive: true);
    }

    [Fact]
    public async Task A_result_a_killed_worker_computed_but_never_posted_is_posted_without_running_the_call_again()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:demo");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        SessionEvent? call = null;
        await Eventually.TrueAsync(async () => (call = (await HistoryAsync(s, session.Id)).FirstOrDefault(e => e.Type == EventTypes.AgentToolUse)) is not null,
            "the agent's first tool call", TimeSpan.FromSeconds(30));

        // What the killed worker left: it ran the call and wrote its result down, then died before posting it.
        var state = Directory.CreateTempSubdirectory("hands-worker-state-");
        Directory.CreateDirectory(Path.Combine(state.FullName, "journal"));
        await File.WriteAllTextAsync(Path.Combine(state.FullName, "journal", session.Id + ".journal"),
            $$"""
            {"call":"{{call!.Id}}","state":"started","tool":"{{call.Name}}","at":1}
            {"call":"{{call.Id}}","state":"finished","is_error":false,"content":[{"type":"text","text":"computed by the worker that died"}],"at":2}
            {"call":"{{call.Id}}","state":"fini
            """);
        var env = await s.ClaimAsync();
        env["HANDS_WORKER_STATE_DIR"] = state.FullName;
        await using var worker = WorkerProcess.Start(env, s.Workdir.FullName, "run", "--max-idle", "200ms", "--workdir", s.Workdir.FullName);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(60)));

        var results = Results(await HistoryAsync(s, session.Id));
        Assert.Equal("computed by the worker that died", results[call.Id!].Text);
        Assert.False(File.Exists(Path.Combine(s.Workdir.FullName, "hello.txt"))); // the demo's first call writes it: it never ran
        Assert.Contains("skipping a line cut short", worker.Log, StringComparison.Ordinal);
        state.Delete(recursive: true);
    }

    private static int ProcessesRunning(string commandLine) => Directory.EnumerateDirectories("/proc")
        .Where(d => int.TryParse(Path.GetFileName(d), out _))
        .Count(d =>
        {
            try
            {
                return File.ReadAllText(Path.Combine(d, "cmdline")).Replace('\0', ' ').Trim() == commandLine;
            }
            catch (IOException)
            {
                return false;
            }
        });

    [Fact]
    public async Task A_worker_that_loses_its_lease_exits_without_stopping_the_item()
    {
        await using var s = await Stage.StartAsync(o => o.LeaseTtl = TimeSpan.FromSeconds(2));
        var (_, workId, attached) = await s.StartAttachedWorkerAsync();
        await using var worker = attached;
        // someone else claims the lease (NO_HEARTBEAT takes it over); the worker's next beat gets 412
        await s.Worker.Work.HeartbeatAsync(s.Env.Id, workId, WorkOperations.NoHeartbeat);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("lease lost: heartbeat precondition failed", worker.Log, StringComparison.Ordinal);
        Assert.Contains("released without stopping it", worker.Log, StringComparison.Ordinal);
        Assert.Equal("active", (await s.Cp.App.Work.GetAsync(s.Env.Id, workId)).State);
    }

    [Fact]
    public async Task A_graceful_stop_is_seen_at_the_next_heartbeat()
    {
        await using var s = await Stage.StartAsync(o => o.LeaseTtl = TimeSpan.FromSeconds(2));
        var (_, workId, attached) = await s.StartAttachedWorkerAsync();
        await using var worker = attached;
        await s.Cp.App.Work.StopAsync(s.Env.Id, workId, force: false);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("heartbeat signals shutdown", worker.Log, StringComparison.Ordinal);
        Assert.Equal("stopped", (await s.Cp.App.Work.GetAsync(s.Env.Id, workId)).State);
    }

    [Fact]
    public async Task Bad_flags_and_missing_credentials_exit_2_with_a_clear_message()
    {
        var dir = Directory.CreateTempSubdirectory("hands-worker-flags-");
        try
        {
            await using (var noEnv = WorkerProcess.Start(new(), dir.FullName, "run"))
            {
                Assert.Equal(2, await noEnv.WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.Contains("--environment-id (or ANTHROPIC_ENVIRONMENT_ID) is required", noEnv.Log, StringComparison.Ordinal);
            }

            await using (var noCredential = WorkerProcess.Start(new() { ["ANTHROPIC_ENVIRONMENT_ID"] = "env_x", ["ANTHROPIC_SESSION_ID"] = "s", ["ANTHROPIC_WORK_ID"] = "w" }, dir.FullName, "run"))
            {
                Assert.Equal(2, await noCredential.WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.Contains("a credential is required", noCredential.Log, StringComparison.Ordinal);
            }

            await using (var badIdle = WorkerProcess.Start(new() { ["ANTHROPIC_ENVIRONMENT_ID"] = "env_x" }, dir.FullName, "poll", "--max-idle", "soon"))
            {
                Assert.Equal(2, await badIdle.WaitAsync(TimeSpan.FromSeconds(30)));
                Assert.Contains("--max-idle: 'soon' is not a duration", badIdle.Log, StringComparison.Ordinal);
            }
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task On_work_runs_the_script_per_item_with_the_ids_in_its_environment_and_the_item_on_stdin()
    {
        await using var s = await Stage.StartAsync();
        var agent = await s.Cp.CreateAgentAsync("scripted:demo");
        var session = await s.Cp.CreateSessionAsync(s.Env.Id, agent.Id, "go");
        // The documented spawn pattern: read the secret from stdin, forward it, run one item in the foreground.
        var worker = Environment.GetEnvironmentVariable("HANDS_WORKER_BINARY") is { Length: > 0 } aot ? aot : $"dotnet {WorkerProcess.JitWorker}";
        var script = Path.Combine(s.Workdir.FullName, "spawn.sh");
        await File.WriteAllTextAsync(script, $$"""
            #!/bin/bash
            set -euo pipefail
            item=$(cat)
            echo "$ANTHROPIC_WORK_ID $ANTHROPIC_SESSION_ID $ANTHROPIC_ENVIRONMENT_ID" > "{{s.Workdir.FullName}}/spawned.txt"
            export ANTHROPIC_WORK_SECRET=$(printf '%s' "$item" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
            unset ANTHROPIC_ENVIRONMENT_KEY
            exec {{worker}} run --max-idle 200ms --workdir "{{s.Workdir.FullName}}"
            """);
        File.SetUnixFileMode(script, (UnixFileMode)Convert.ToInt32("755", 8));
        await using var poller = WorkerProcess.Start(new()
        {
            ["ANTHROPIC_BASE_URL"] = s.Cp.BaseAddress.ToString().TrimEnd('/'),
            ["ANTHROPIC_ENVIRONMENT_ID"] = s.Env.Id,
            ["ANTHROPIC_ENVIRONMENT_KEY"] = s.Key,
        }, s.Workdir.FullName, "poll", "--on-work", script);
        var done = await TestControlPlane.CollectAsync(s.Cp.App, session.Id, e => TestControlPlane.IsIdle(e, "end_turn"),
            (await s.Cp.App.Events.ListAsync(session.Id, limit: 1)).Data[0].Id, TimeSpan.FromSeconds(60));
        Assert.Equal("hello.txt contains: hi from the sandbox", done.Last(e => e.Type == EventTypes.AgentMessage).Text);
        var item = (await s.Worker.Work.ListAsync(s.Env.Id)).Data.Single();
        Assert.Equal($"{item.Id} {session.Id} {s.Env.Id}\n", await File.ReadAllTextAsync(Path.Combine(s.Workdir.FullName, "spawned.txt")));
        poller.Terminate();
        Assert.Equal(0, await poller.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("stopped", (await s.Cp.App.Work.GetAsync(s.Env.Id, item.Id)).State);
    }

    [Fact]
    public async Task A_control_plane_that_answers_500_fails_the_item_cleanly_without_leaking_the_credential()
    {
        await using var stub = await LoopbackStub.StartAsync(c =>
        {
            c.Response.StatusCode = 500;
            return Task.CompletedTask;
        });
        var dir = Directory.CreateTempSubdirectory("hands-worker-500-");
        try
        {
            await using var worker = WorkerProcess.Start(new()
            {
                ["ANTHROPIC_BASE_URL"] = stub.BaseAddress.ToString().TrimEnd('/'),
                ["ANTHROPIC_ENVIRONMENT_ID"] = "env_x",
                ["ANTHROPIC_ENVIRONMENT_KEY"] = "sk-ant-oat01-DO-NOT-LEAK",
                ["ANTHROPIC_SESSION_ID"] = "sesn_x",
                ["ANTHROPIC_WORK_ID"] = "work_x",
            }, dir.FullName, "run");
            Assert.Equal(1, await worker.WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains("work item failed", worker.Log, StringComparison.Ordinal);
            Assert.DoesNotContain("DO-NOT-LEAK", worker.Log, StringComparison.Ordinal);
            Assert.All(stub.Requests, r => Assert.Equal("Bearer sk-ant-oat01-DO-NOT-LEAK", r.Headers["authorization"]));
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Archiving_the_session_ends_the_worker()
    {
        await using var s = await Stage.StartAsync();
        var (sessionId, _, attached) = await s.StartAttachedWorkerAsync();
        await using var worker = attached;
        await s.Cp.App.Sessions.ArchiveAsync(sessionId);
        Assert.Equal(0, await worker.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("session terminated", worker.Log, StringComparison.Ordinal);
    }
}
