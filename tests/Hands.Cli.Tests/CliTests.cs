using System.Diagnostics;

namespace Hands.Cli.Tests;

/// <summary>The <c>hands</c> command as a user runs it: a real process, its output and exit code.</summary>
public sealed class CliTests
{
    private static async Task<(int Exit, string Stdout, string Stderr)> HandsAsync(Dictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "hands.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment.Remove("ANTHROPIC_API_KEY");
        psi.Environment.Remove("ANTHROPIC_BASE_URL");
        foreach (var (k, v) in env ?? [])
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// Event shapes newer than the first reference (SDK 1.14.0): a thread and a workflow run, a refusal with its details,
    /// a <c>session.error</c> of a new type. The session driver shows each plainly and exits 1 for a turn that did not
    /// end with <c>end_turn</c>.
    /// </summary>
    [Fact]
    public async Task Session_shows_a_workflow_run_a_refusal_and_a_new_error_type()
    {
        await using var cp = await Hands.Testing.TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync("scripted:newer-events");
        var settings = new Dictionary<string, string>
        {
            ["ANTHROPIC_BASE_URL"] = cp.BaseAddress.ToString(),
            ["ANTHROPIC_API_KEY"] = Hands.Testing.TestControlPlane.ApiKey,
            ["COLUMNS"] = "200",
        };

        var (exit, stdout, stderr) = await HandsAsync(settings, "session", "go", "--agent", agent.Id, "--environment", env.Id);
        Assert.True(exit == 1, $"exit {exit}\n{stdout}\n{stderr}");
        Assert.Contains("· thread sthr_scripted_1 created for workflow run wfrun_scripted_1", stdout, StringComparison.Ordinal);
        Assert.Contains("· workflow run wfrun_scripted_1 created", stdout, StringComparison.Ordinal);
        Assert.Contains("· workflow run wfrun_scripted_1 phase started", stdout, StringComparison.Ordinal);
        Assert.Contains("· workflow run wfrun_scripted_1 ended", stdout, StringComparison.Ordinal);
        Assert.Contains("· refused (category=cyber): The request asked for a working exploit.", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("· done", stdout, StringComparison.Ordinal);

        var session = stdout.Split('\n')[0].Replace("· session ", "", StringComparison.Ordinal).Trim();
        var (again, next, nextErr) = await HandsAsync(settings, "session", "go on", "--session", session);
        Assert.True(again == 1, $"exit {again}\n{next}\n{nextErr}");
        Assert.Contains("✗ tool_use_limit_reached_error: This turn reached its limit of 1 tool call.", next, StringComparison.Ordinal);
        Assert.Contains("· done (stop_reason=retries_exhausted)", next, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_runs_a_session_with_real_tool_calls_to_done()
    {
        var (exit, stdout, stderr) = await HandsAsync(null, "demo");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("→ write  hello.txt", stdout, StringComparison.Ordinal);
        Assert.Contains("← hi from the sandbox", stdout, StringComparison.Ordinal);
        Assert.Contains("hello.txt contains: hi from the sandbox", stdout, StringComparison.Ordinal);
        Assert.EndsWith("· done (stop_reason=end_turn)", stdout.TrimEnd(), StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", stdout, StringComparison.Ordinal); // no colour when not on a terminal
    }

    [Fact]
    public async Task Fork_demo_forks_four_candidate_fixes_and_adopts_the_fastest_passing_one()
    {
        var (exit, stdout, stderr) = await HandsAsync(null, "fork-demo");
        Assert.True(exit == 0, stdout + stderr);
        Assert.Contains("sh test.sh → FAIL add 2 3 = -1, want 5", stdout, StringComparison.Ordinal);
        Assert.Matches(@"swap-operands\tFAIL\t1\t", stdout);
        Assert.Matches(@"multiply\tFAIL\t1\t", stdout);
        Assert.Matches(@"plus-after-retry\tPASS\t0\t", stdout);
        Assert.Contains("winner: plus (exit 0", stdout, StringComparison.Ordinal);
        Assert.Contains("1 file(s) copied (add.sh)", stdout, StringComparison.Ordinal);
        Assert.Contains("parent now: add.sh: echo $(($1 + $2)); sh test.sh → PASS 3/3", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Fork_explore_refuses_bad_input_with_one_line()
    {
        var (exit, _, stderr) = await HandsAsync(new() { ["TENSORLAKE_API_URL"] = "http://127.0.0.1:9" }, "fork-explore", "--sandbox", "x");
        Assert.Equal(1, exit);
        Assert.Contains("give at least one --branch NAME=COMMAND", stderr, StringComparison.Ordinal);
        (exit, _, stderr) = await HandsAsync(new() { ["TENSORLAKE_API_URL"] = "http://127.0.0.1:9" }, "fork-explore", "--sandbox", "x", "--branch", "no-equals-sign");
        Assert.Equal(1, exit);
        Assert.Contains("a branch is NAME=COMMAND", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_verb_with_a_description()
    {
        var (exit, stdout, _) = await HandsAsync(null, "--help");
        Assert.Equal(0, exit);
        foreach (var verb in new[] { "control-plane", "env", "agent", "demo", "fork-explore", "fork-demo" })
        {
            Assert.Matches($@"\n\s+{verb}\s+\S", stdout);
        }
    }

    [Fact]
    public async Task App_commands_explain_a_missing_key_and_an_unreachable_server()
    {
        var (exit, _, stderr) = await HandsAsync(null, "env", "list");
        Assert.Equal(1, exit);
        Assert.Contains("No API key: set ANTHROPIC_API_KEY", stderr, StringComparison.Ordinal);

        (exit, _, stderr) = await HandsAsync(new() { ["ANTHROPIC_API_KEY"] = "k", ["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:9" }, "agent", "list");
        Assert.Equal(1, exit);
        Assert.Contains("connection failed", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal); // one line, no stack trace
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Secrets_are_read_from_owner_only_files_and_from_the_credentials_directory()
    {
        const string key = "sk-ant-api03-cli-credential-tests";
        var dir = Path.Combine(Path.GetTempPath(), "hands-cli-creds-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        await using var plane = await Hands.ControlPlane.ControlPlaneServer.StartAsync(new Hands.ControlPlane.ControlPlaneOptions
        {
            Urls = "http://127.0.0.1:0",
            DataDirectory = Path.Combine(dir, "cp"),
            ApiKey = key,
        });
        try
        {
            var baseUrl = plane.BaseAddress.ToString().TrimEnd('/');
            var file = Path.Combine(dir, "api-key");
            await File.WriteAllTextAsync(file, key + "\n");

            // Readable by others: refused, naming the file and the rule, never the value.
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            var (exit, stdout, stderr) = await HandsAsync(new() { ["ANTHROPIC_BASE_URL"] = baseUrl, ["ANTHROPIC_API_KEY_FILE"] = file }, "env", "list");
            Assert.Equal(1, exit);
            Assert.Contains("ANTHROPIC_API_KEY_FILE", stderr, StringComparison.Ordinal);
            Assert.Contains("chmod 600", stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(key, stdout + stderr, StringComparison.Ordinal);

            // Owner-only: the server accepts the key it holds, and a file wins over a stale variable.
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            (exit, _, stderr) = await HandsAsync(new() { ["ANTHROPIC_BASE_URL"] = baseUrl, ["ANTHROPIC_API_KEY_FILE"] = file, ["ANTHROPIC_API_KEY"] = "stale" }, "env", "list");
            Assert.True(exit == 0, stderr);

            // systemd's LoadCredential=: $CREDENTIALS_DIRECTORY/NAME.
            var credentials = Path.Combine(dir, "credentials");
            Directory.CreateDirectory(credentials);
            File.Copy(file, Path.Combine(credentials, "ANTHROPIC_API_KEY"));
            (exit, _, stderr) = await HandsAsync(new() { ["ANTHROPIC_BASE_URL"] = baseUrl, ["CREDENTIALS_DIRECTORY"] = credentials }, "env", "list");
            Assert.True(exit == 0, stderr);

            // And a wrong one there is the one used (refused by the server), so the check above is not vacuous.
            await File.WriteAllTextAsync(Path.Combine(credentials, "ANTHROPIC_API_KEY"), "sk-ant-api03-wrong\n");
            (exit, _, _) = await HandsAsync(new() { ["ANTHROPIC_BASE_URL"] = baseUrl, ["CREDENTIALS_DIRECTORY"] = credentials, ["ANTHROPIC_API_KEY"] = key }, "env", "list");
            Assert.Equal(1, exit);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// <c>hands sandbox network</c> against a loopback server in Tensorlake's shapes (no engine, no control plane): it
    /// sends the window and page size, follows cursors with <c>--all</c>, prints rows a script can read, and refuses a
    /// bad flag before sending anything.
    /// </summary>
    [Fact]
    public async Task Sandbox_network_pages_events_prints_destinations_and_refuses_bad_flags()
    {
        var asked = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var server = await Hands.Testing.LoopbackStub.StartAsync(async c =>
        {
            asked.Enqueue($"{c.Request.Path}{c.Request.QueryString}");
            static string Event(int sequence, string kind, string ip, string action) =>
                $$"""{"namespace":"default","sandbox_id":"sbx","executor_id":"h","allocation_id":"sbx","capture_session":"cs","sequence":{{sequence}},"observed_at_ms":1800000000000,"event_kind":"{{kind}}","connection_id":"c{{sequence}}","observed_connections":1,"source_ip":"10.200.0.6","source_port":4000,"destination_ip":"{{ip}}","destination_port":443,"transport":"tcp","original_bytes":1234,"reply_bytes":null,"original_packets":5,"reply_packets":null,"kernel_started_at_ns":null,"kernel_destroyed_at_ns":null,"conntrack_status":8,"tcp_state":3,"detail":"established","observation_source":"conntrack","dns_name":null,"dns_query_type":null,"dns_response_code":null,"dns_answers":[],"policy_action":"{{action}}"}""";
            var body = c.Request.Path.Value switch
            {
                "/v1/namespaces/default/sandboxes/sbx/network/events" when c.Request.Query["cursor"] == "next" => $$"""{"events":[{{Event(2, "policy", "10.0.0.9", "deny")}}],"next_cursor":null,"from_ms":1,"to_ms":2}""",
                "/v1/namespaces/default/sandboxes/sbx/network/events" => $$"""{"events":[{{Event(1, "connection_new", "10.0.0.1", "allow")}}],"next_cursor":"next","from_ms":1,"to_ms":2}""",
                "/v1/namespaces/default/sandboxes/sbx/network/destinations" => """{"destinations":[{"destination_ip":"10.0.0.1","destination_port":443,"transport":"tcp","observed_connections":3,"original_bytes":4000,"reply_bytes":null,"unknown_byte_connections":1,"degraded_connections":0}],"truncated":false,"from_ms":0,"to_ms":59999}""",
                _ => """{"state":"recent","last_observed_at_ms":1800000000000,"allocation_id":"sbx","coverage":["conntrack","policy"],"limitations":["polled"]}""",
            };
            c.Response.ContentType = "application/json";
            await Microsoft.AspNetCore.Http.HttpResponseWritingExtensions.WriteAsync(c.Response, body);
        });
        var env = new Dictionary<string, string> { ["TENSORLAKE_API_URL"] = server.BaseAddress.ToString().TrimEnd('/'), ["TENSORLAKE_API_KEY"] = "tl_apiKey_cli" };

        var (exit, stdout, stderr) = await HandsAsync(env, "sandbox", "network", "sbx", "--from", "1000", "--to", "2000", "--limit", "1", "--all");
        Assert.True(exit == 0, stderr);
        var rows = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("TIME\tKIND\tSOURCE\tACTION\tDESTINATION", rows[0], StringComparison.Ordinal);
        Assert.Contains(rows, r => r.Contains("\tconnection_new\tconntrack\tallow\t10.0.0.1:443/tcp\t1234\tunknown\t", StringComparison.Ordinal));
        Assert.Contains(rows, r => r.Contains("\tpolicy\tconntrack\tdeny\t10.0.0.9:443/tcp", StringComparison.Ordinal));
        Assert.Equal(["/v1/namespaces/default/sandboxes/sbx/network/events?from_ms=1000&to_ms=2000&limit=1", "/v1/namespaces/default/sandboxes/sbx/network/events?from_ms=1000&to_ms=2000&limit=1&cursor=next"], asked);

        (exit, stdout, stderr) = await HandsAsync(env, "sandbox", "network", "sbx", "destinations");
        Assert.True(exit == 0, stderr);
        Assert.Contains("10.0.0.1:443\ttcp\t3\t4000\tunknown\t1\t0", stdout, StringComparison.Ordinal);
        (exit, stdout, _) = await HandsAsync(env, "sandbox", "network", "sbx", "status", "--json");
        Assert.Equal(0, exit);
        Assert.Contains("\"state\":\"recent\"", stdout, StringComparison.Ordinal);

        var before = asked.Count;
        foreach (var (args, message) in new[]
        {
            (new[] { "--limit", "501" }, "--limit must be from 1 to 500"),
            (new[] { "--from", "yesterday" }, "--from: 'yesterday' is not Unix milliseconds"),
            (new[] { "--from", "99999999999999d" }, "--from: '99999999999999d' is before 1970"),
            (new[] { "destinations", "--cursor", "x" }, "--cursor and --all apply only to network events"),
        })
        {
            (exit, _, stderr) = await HandsAsync(env, ["sandbox", "network", "sbx", .. args]);
            Assert.Equal(1, exit);
            Assert.Contains(message, stderr, StringComparison.Ordinal);
        }

        Assert.Equal(before, asked.Count);
    }
}
