using System.Diagnostics;
using Hands.Orchestrator;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// The recommended mode, as a user runs it: <c>hands webhook-sandbox --register</c> puts the native receiver
/// (<c>hands-receiver</c>, found in the clone's <c>artifacts/</c>) in its own sandbox behind the engine's ingress; the control plane's deliveries reach it at its public-style URL, it creates
/// the session sandboxes through the engine API, and a suspended receiver wakes on the next delivery and handles it.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class WebhookSandboxTests(EngineFixture engine)
{
    private const string ReceiverName = "webhook-tests";

    [Fact]
    public async Task Receiver_in_a_sandbox_serves_sessions_and_wakes_on_the_next_delivery()
    {
        await using var cp = await LocalControlPlane.StartAsync(engine);
        var sessions = new List<string>();
        try
        {
            var (exit, output) = await RunHandsAsync(cp, "webhook-sandbox", "--register");
            Assert.True(exit == 0, output);
            Assert.Contains("public URL", output, StringComparison.Ordinal);
            Assert.Contains("\"status\":\"ok\"", output, StringComparison.Ordinal);

            sessions.Add(await cp.CreateSessionAsync());
            Assert.Equal("end_turn", await cp.RunTurnAsync(sessions[0], "go"));
            Assert.Contains("hi from the sandbox", await cp.ToolResultsAsync(sessions[0]));
            var first = Assert.Single((await cp.Client.WebhookEndpoints.ListAsync()).Data);

            // Registering again while the receiver runs keeps its endpoint: a second one would have a secret the running
            // receiver never learns, and every delivery to it would be refused and retried.
            var (again, againOutput) = await RunHandsAsync(cp, "webhook-sandbox", "--register");
            Assert.True(again == 0, againOutput);
            Assert.Contains("registered already", againOutput, StringComparison.Ordinal);
            Assert.Equal(first.Id, Assert.Single((await cp.Client.WebhookEndpoints.ListAsync()).Data).Id);

            // Idle: the receiver's sandbox is suspended; the next delivery must wake it through the ingress.
            await engine.Client.SuspendAsync(ReceiverName);
            await engine.Client.WaitForStatusAsync(ReceiverName, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30));
            sessions.Add(await cp.CreateSessionAsync());
            Assert.Equal("end_turn", await cp.RunTurnAsync(sessions[1], "go"));
            Assert.Equal(SandboxStatus.Running, (await engine.Client.GetAsync(ReceiverName)).Status);

            var (statusExit, status) = await RunHandsAsync(cp, "webhook-sandbox", "--status");
            Assert.True(statusExit == 0, status);
            Assert.Contains("running", status, StringComparison.Ordinal);
            // The receiver's log names sessions, never the credentials it was given, and it verified every delivery.
            var (_, logs) = await RunHandsAsync(cp, "webhook-sandbox", "--logs");
            Assert.DoesNotContain(cp.EnvironmentKey, logs, StringComparison.Ordinal);
            Assert.DoesNotContain("refused a webhook delivery", logs, StringComparison.Ordinal);

            // What runs is the native receiver, copied in alone: no .NET runtime and no JIT program in the sandbox.
            var receiver = await engine.Client.GetAsync(ReceiverName);
            var layout = await engine.Client.Proxy(receiver).RunAsync(new RunProcessRequest
            {
                Command = "bash",
                Args = ["-c", "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -v '^ *$'; echo '--'; find /opt -name 'hands.d*ll'; find /opt/hands/receiver -type f"],
            });
            Assert.Contains($"{WebhookReceiverSandbox.BinaryPath} --urls http://0.0.0.0:{WebhookReceiverSandbox.Port}", layout.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain("hands.dll", layout.Stdout, StringComparison.Ordinal);
            Assert.Equal([$"{WebhookReceiverSandbox.InstallDirectory}/.installed", WebhookReceiverSandbox.BinaryPath],
                layout.Stdout[(layout.Stdout.IndexOf("--\n", StringComparison.Ordinal) + 3)..].Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal));

            // It holds the environment key in its own environment: nothing else in its sandbox, root included, can read it.
            var peek = await engine.Client.Proxy(receiver).RunAsync(new RunProcessRequest
            {
                Command = "bash",
                Args = ["-c", "for p in /proc/[0-9]*; do if tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -q hands-receiver; then echo \"pid ${p#/proc/}\"; tr '\\0' '\\n' < $p/environ; fi; done 2>&1"],
            });
            // Its /proc/PID/environ refuses even the sandbox's root (the receiver is non-dumpable).
            Assert.Contains("Permission denied", peek.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(cp.EnvironmentKey, peek.Stdout + peek.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("ANTHROPIC_WEBHOOK_SIGNING_KEY", peek.Stdout + peek.Stderr, StringComparison.Ordinal);

            // Terminating the receiver deletes its endpoint (its URL names the sandbox, so nothing would answer it again);
            // registering again makes one for the new receiver, which verifies what is delivered.
            var (terminated, terminateOutput) = await RunHandsAsync(cp, "webhook-sandbox", "--terminate");
            Assert.True(terminated == 0, terminateOutput);
            Assert.Contains($"deleted webhook endpoint {first.Id}", terminateOutput, StringComparison.Ordinal);
            Assert.Empty((await cp.Client.WebhookEndpoints.ListAsync()).Data);
            var (fresh, freshOutput) = await RunHandsAsync(cp, "webhook-sandbox", "--register");
            Assert.True(fresh == 0, freshOutput);
            Assert.NotEqual(first.Id, Assert.Single((await cp.Client.WebhookEndpoints.ListAsync()).Data).Id);
            sessions.Add(await cp.CreateSessionAsync());
            Assert.Equal("end_turn", await cp.RunTurnAsync(sessions[2], "go"));
            var (_, freshLogs) = await RunHandsAsync(cp, "webhook-sandbox", "--logs");
            Assert.DoesNotContain("refused a webhook delivery", freshLogs, StringComparison.Ordinal);
        }
        finally
        {
            foreach (var name in sessions.Select(SandboxNames.ForSession).Append(ReceiverName))
            {
                await engine.DeleteQuietlyAsync(name);
            }
        }
    }

    /// <summary>Runs the real <c>hands</c> command (built beside this test assembly) with the stack's settings.</summary>
    private async Task<(int Exit, string Output)> RunHandsAsync(LocalControlPlane cp, params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "hands.dll"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["ANTHROPIC_BASE_URL"] = cp.Server.BaseAddress.ToString();
        info.Environment["ANTHROPIC_API_KEY"] = "sk-ant-api03-orchestration-tests";
        info.Environment["ANTHROPIC_ENVIRONMENT_ID"] = cp.EnvironmentId;
        info.Environment["ANTHROPIC_ENVIRONMENT_KEY"] = cp.EnvironmentKey;
        info.Environment["TENSORLAKE_API_URL"] = engine.Engine.ApiAddress.ToString();
        info.Environment["HANDS_ENGINE_API_KEY"] = EngineFixture.ApiKey;
        info.Environment["WEBHOOK_SANDBOX_NAME"] = ReceiverName;
        info.Environment["SANDBOX_IMAGE_NAME"] = "host";
        info.Environment["RUNNER_MAX_IDLE_SECONDS"] = "2";
        info.Environment["WEBHOOK_DRAIN_SECONDS"] = "3600";
        info.Environment["ORCHESTRATOR_LOCK_FILE"] = Path.Combine(Path.GetTempPath(), "hands-webhook-tests.lock");
        info.Environment.Remove("TENSORLAKE_API_KEY");
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }
}
