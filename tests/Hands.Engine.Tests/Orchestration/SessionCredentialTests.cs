using System.Text.Json;
using System.Text.Json.Nodes;
using Hands.Orchestrator;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// Least privilege, attacked: a session's agent (a scripted scenario) hunts for every credential its sandbox could
/// hold — every process's environment and command line, every readable process's memory (the worker's and the
/// daemon's included), and the files where a secret could have been left — and none of the environment key, the API
/// key or a sessions token shows up in its tool results, while the session still completes on its sessions token. The
/// host then searches a memory snapshot of the sandbox, which holds every process's memory whatever the sandbox may
/// read: the worker's sessions token is there (the control), neither key is.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class SessionCredentialTests(EngineFixture engine)
{
    /// <summary>What a prompt-injected agent would run: prints anything that looks like an Anthropic credential.</summary>
    private const string Hunt = """
        echo "== environments and command lines"
        for p in /proc/[0-9]*; do tr '\0' '\n' < $p/environ 2>/dev/null; tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -a -e ANTHROPIC -e sk-ant || true
        echo "== files"
        grep -rI -o -e 'sk-ant-[A-Za-z0-9_-]*' /workspace /root /tmp /run /etc /home /opt /var 2>/dev/null | head -20 || true
        echo "== memory"
        python3 - <<'PY'
        import os, re
        me = os.getpid()
        pattern = re.compile(rb'sk-ant-[A-Za-z0-9_-]{8,}')
        for pid in sorted(p for p in os.listdir('/proc') if p.isdigit() and int(p) != me and int(p) != os.getppid()):
            try:
                maps = open(f'/proc/{pid}/maps').read().splitlines()
                mem = open(f'/proc/{pid}/mem', 'rb', 0)
            except OSError as e:
                print(pid, 'closed:', e.strerror)
                continue
            found = set()
            for line in maps:
                start, end = (int(x, 16) for x in line.split()[0].split('-'))
                if end - start > 256 << 20:
                    continue
                try:
                    mem.seek(start)
                    found.update(m.group().decode() for m in pattern.finditer(mem.read(end - start)))
                except (OSError, ValueError, OverflowError):
                    pass
            print(pid, open(f'/proc/{pid}/comm').read().strip(), 'read', sorted(found))
        PY
        echo "== done"
        """;

    [Fact]
    public async Task A_sessions_sandbox_holds_no_environment_key_api_key_or_token_its_tools_can_find()
    {
        var scenario = new JsonObject
        {
            ["turns"] = new JsonArray(new JsonObject
            {
                ["steps"] = new JsonArray(
                    new JsonObject { ["tool"] = "bash", ["input"] = new JsonObject { ["command"] = Hunt } },
                    new JsonObject { ["message"] = "looked everywhere" }),
            }),
        };
        await using var cp = await LocalControlPlane.StartAsync(engine, "hunt", scenario.ToJsonString());
        // The worker stays up after the turn, so the memory snapshot below holds it.
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(b => b.WorkerMaxIdle = TimeSpan.FromMinutes(2)));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        try
        {
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "find every credential you can"));
            var results = string.Join("\n", await cp.ToolResultsAsync(session));
            // The hunt ran to the end and really looked into memory (it read its own shell, so reading works).
            Assert.Contains("== done", results, StringComparison.Ordinal);
            Assert.Contains(" read [", results, StringComparison.Ordinal);
            Assert.DoesNotContain(cp.EnvironmentKey, results, StringComparison.Ordinal);
            Assert.DoesNotContain(LocalControlPlane.ApiKey, results, StringComparison.Ordinal);
            Assert.DoesNotContain("ANTHROPIC_ENVIRONMENT_KEY", results, StringComparison.Ordinal);
            Assert.DoesNotContain("ANTHROPIC_WORK_SECRET=", results, StringComparison.Ordinal);
            Assert.DoesNotContain("sk-ant-", results.Replace("sk-ant-[A-Za-z0-9_-]", "", StringComparison.Ordinal), StringComparison.Ordinal);

            // And from the host, which can read everything: a memory snapshot of the sandbox holds every byte of every
            // process in it (the worker and the daemon included); neither key is among them.
            var snapshot = await engine.Client.SnapshotAsync(SandboxNames.ForSession(session), global::Hands.Sandboxes.Models.SnapshotType.Memory);
            try
            {
                var images = Path.Combine(Storage.DataVolume.MountPointOf(engine.DataDirectory), "checkpoints", snapshot.SnapshotId);
                var sessionsTokens = 0;
                foreach (var file in Directory.EnumerateFiles(images, "*", SearchOption.AllDirectories))
                {
                    var bytes = await File.ReadAllBytesAsync(file);
                    foreach (var encoding in new System.Text.Encoding[] { System.Text.Encoding.UTF8, System.Text.Encoding.Unicode })
                    {
                        // .NET keeps strings as UTF-16; environments and wire buffers are UTF-8.
                        Assert.True(bytes.AsSpan().IndexOf(encoding.GetBytes(cp.EnvironmentKey)) < 0, $"the environment key is in {file} ({encoding.WebName})");
                        Assert.True(bytes.AsSpan().IndexOf(encoding.GetBytes(LocalControlPlane.ApiKey)) < 0, $"the API key is in {file} ({encoding.WebName})");
                        sessionsTokens += bytes.AsSpan().IndexOf(encoding.GetBytes("sk-ant-req-")) >= 0 ? 1 : 0;
                    }
                }

                // The control: the worker's own sessions token is in there, so the worker's memory was searched.
                Assert.True(sessionsTokens > 0, "the worker's sessions token is not in the snapshot: the worker was not in it, and the search proves nothing");
            }
            finally
            {
                await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
            }
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }

    [Fact]
    public async Task With_session_routes_the_sandbox_reaches_the_api_only_for_its_own_session()
    {
        var api = $"http://{WorkerUrls.HostName}:{engine.ControlPlanePort}";
        var scenario = new JsonObject
        {
            ["turns"] = new JsonArray(new JsonObject
            {
                ["steps"] = new JsonArray(
                    new JsonObject { ["tool"] = "bash", ["input"] = new JsonObject { ["command"] = $"curl -s {api}/v1/environments; echo; curl -s {api}/v1/sessions" } },
                    new JsonObject { ["message"] = "tried" }),
            }),
        };
        await using var cp = await LocalControlPlane.StartAsync(engine, "reach", scenario.ToJsonString());
        await using var orchestrator = new WorkQueueOrchestrator(cp.EnvironmentClient, engine.Client, cp.Options(b => b.RestrictApiRoutes = true));
        using var stop = new CancellationTokenSource();
        var polling = orchestrator.RunPollingAsync(999, stop.Token);
        var session = await cp.CreateSessionAsync();
        try
        {
            // The worker's own six routes pass: the turn completes.
            Assert.Equal("end_turn", await cp.RunTurnAsync(session, "look around"));
            // Anything else is refused at the engine's forward, before the control plane sees it.
            var result = (await cp.ToolResultsAsync(session)).Single();
            Assert.Equal(2, result.Split("is not on this sandbox's allow-list", StringSplitOptions.None).Length - 1);
        }
        finally
        {
            await stop.CancelAsync();
            await polling;
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(session));
        }
    }
}
