using System.CommandLine;
using System.Globalization;
using Hands.Cli.Configuration;
using Hands.Orchestrator;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands webhook-sandbox</c>: the recommended mode. The webhook receiver itself runs in a sandbox
/// (<c>WEBHOOK_SANDBOX_NAME</c>, default <c>webhook-orchestrator</c>) with its port exposed publicly; it is suspended
/// when idle (<c>WEBHOOK_SANDBOX_TIMEOUT_SECONDS</c>, default 600) and woken by the next delivery, which it then
/// handles. Its credentials ride the receiver process's environment, never the image or a file.
/// </summary>
internal static class WebhookSandboxCommand
{
    /// <summary>The receiver's port inside its sandbox.</summary>
    public const int Port = 5051;

    /// <summary>The receiver's process name inside its sandbox.</summary>
    public const string ProcessName = "hands-webhook";

    /// <summary>Where the <c>hands</c> program is copied inside the sandbox.</summary>
    public const string InstallDirectory = "/opt/hands/cli";

    public static Command Create()
    {
        var status = new Option<bool>("--status") { Description = "Print the receiver's sandbox, URL and health" };
        var logs = new Option<bool>("--logs") { Description = "Print the receiver's output" };
        var terminate = new Option<bool>("--terminate") { Description = "Terminate the receiver's sandbox" };
        var register = new Option<bool>("--register")
        {
            Description = "Register the public URL as a webhook endpoint (local control plane; needs ANTHROPIC_API_KEY) and use its signing secret",
        };
        var command = new Command("webhook-sandbox", "Run the webhook receiver inside a sandbox, exposed publicly, suspended when idle and woken by the next delivery")
        {
            status, logs, terminate, register,
        };
        OrchestratorSettings.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            var name = Settings.Get("WEBHOOK_SANDBOX_NAME") ?? "webhook-orchestrator";
            using var sandboxes = SandboxClientFactory.Create();
            if (parse.GetValue(terminate))
            {
                await sandboxes.DeleteAsync(name, ct);
                Console.WriteLine($"terminated {name}");
                return 0;
            }

            if (parse.GetValue(logs))
            {
                var output = await sandboxes.Proxy(await sandboxes.GetAsync(name, ct)).GetOutputAsync(ProcessName, cancellationToken: ct);
                foreach (var line in output.Lines)
                {
                    Console.WriteLine(line);
                }

                return 0;
            }

            if (parse.GetValue(status))
            {
                return await PrintStatusAsync(sandboxes, name, wake: false, ct);
            }

            return await LaunchAsync(parse, sandboxes, name, parse.GetValue(register), ct);
        });
        return command;
    }

    private static async Task<int> LaunchAsync(ParseResult parse, TensorlakeClient sandboxes, string name, bool register, CancellationToken ct)
    {
        var options = OrchestratorSettings.Build(parse, NullLogger.Instance);
        var signingKey = register ? null : Settings.Require("ANTHROPIC_WEBHOOK_SIGNING_KEY", "the endpoint's signing secret (whsec_...), or pass --register on a local control plane");
        var info = await GetOrCreateAsync(sandboxes, name, ct);
        var publicUrl = TensorlakeClient.PortUrl(info.IngressEndpoint ?? throw new CliException($"the provider did not say where {name}'s ports are served (no ingress_endpoint)"), info.CanonicalId, Port);
        if (register)
        {
            using var org = CliContext.CreateClient(parse);
            var endpoint = await org.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest
            {
                Url = publicUrl.ToString(),
                EventTypes = ["session.status_run_started"],
            }, ct);
            signingKey = endpoint.Secret ?? throw new CliException("the control plane did not return the endpoint's signing secret");
            Console.WriteLine($"registered webhook endpoint {endpoint.Id} -> {publicUrl}");
        }

        var proxy = sandboxes.Proxy(info);
        if (!await WorkerLauncher.IsRunningAsync(proxy, ProcessName, ct))
        {
            await InstallAsync(proxy, ct);
            await proxy.StartProcessAsync(new StartProcessRequest
            {
                Command = "dotnet",
                Args = [$"{InstallDirectory}/hands.dll", "webhook", "--urls", $"http://0.0.0.0:{Port.ToString(CultureInfo.InvariantCulture)}"],
                Env = ReceiverEnvironment(options, signingKey!),
                Name = ProcessName,
                WorkingDir = "/",
            }, ct);
            Console.WriteLine($"started the receiver in {name}");
        }

        return await PrintStatusAsync(sandboxes, name, wake: true, ct);
    }

    private static async Task<SandboxInfo> GetOrCreateAsync(TensorlakeClient sandboxes, string name, CancellationToken ct)
    {
        try
        {
            var existing = await sandboxes.GetAsync(name, ct);
            if (existing.Status == SandboxStatus.Suspended)
            {
                await sandboxes.ResumeAsync(name, ct);
            }

            if (existing.Status is not (SandboxStatus.Terminated or SandboxStatus.Timeout))
            {
                return await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running], TimeSpan.FromSeconds(120), cancellationToken: ct);
            }
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
        }

        await sandboxes.CreateAsync(new CreateSandboxRequest
        {
            Name = name,
            Image = Settings.Get("WEBHOOK_SANDBOX_IMAGE_NAME"),
            TimeoutSecs = Settings.Int("WEBHOOK_SANDBOX_TIMEOUT_SECONDS", 600, 1, 30 * 86400),
            ExposedPorts = [Port],
            // The sender cannot carry a Tensorlake key; every delivery is authenticated by its signature instead.
            AllowUnauthenticatedAccess = true,
        }, ct);
        Console.WriteLine($"created sandbox {name}");
        return await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running], TimeSpan.FromSeconds(120), cancellationToken: ct);
    }

    /// <summary>Copies this very <c>hands</c> program into the sandbox (once; the image then needs only the .NET runtime).</summary>
    private static async Task InstallAsync(SandboxProxyClient proxy, CancellationToken ct)
    {
        var marker = $"{InstallDirectory}/.installed";
        var version = typeof(WebhookSandboxCommand).Assembly.ManifestModule.ModuleVersionId.ToString();
        try
        {
            if (System.Text.Encoding.UTF8.GetString(await proxy.ReadFileAsync(marker, ct)) == version)
            {
                return;
            }
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
        }

        var root = AppContext.BaseDirectory;
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories).ToList();
        Console.WriteLine($"installing hands into the sandbox ({files.Count} files)...");
        await Parallel.ForEachAsync(files, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (file, token) =>
        {
            var relative = Path.GetRelativePath(root, file).Replace('\\', '/');
            await proxy.WriteFileAsync($"{InstallDirectory}/{relative}", await File.ReadAllBytesAsync(file, token), token);
        });
        await proxy.WriteFileAsync(marker, System.Text.Encoding.UTF8.GetBytes(version), ct);
    }

    /// <summary>The receiver's environment: its credentials and settings, with the host's loopback URLs as seen from inside.</summary>
    private static Dictionary<string, string> ReceiverEnvironment(OrchestratorOptions options, string signingKey)
    {
        var sandboxApi = SandboxClientFactory.Options();
        var env = new Dictionary<string, string>
        {
            ["ANTHROPIC_ENVIRONMENT_ID"] = options.EnvironmentId,
            ["ANTHROPIC_ENVIRONMENT_KEY"] = options.EnvironmentKey,
            ["ANTHROPIC_WEBHOOK_SIGNING_KEY"] = signingKey,
            ["ANTHROPIC_BASE_URL"] = WorkerUrls.FromHost(options.BaseUrl).ToString().TrimEnd('/'),
            // It holds the environment key and the provider's: a memory fork of the receiver must not run a copy.
            [WorkerLauncher.ForkPolicyVariable] = "terminate",
            ["TENSORLAKE_API_URL"] = WorkerUrls.FromHost(sandboxApi.ApiUrl).ToString().TrimEnd('/'),
            ["RESUME_SUSPENDED_SESSIONS"] = options.ResumeSuspendedSessions ? "true" : "false",
            ["SANDBOX_TIMEOUT_SECONDS"] = options.SandboxTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
            ["RUNNER_MAX_IDLE_SECONDS"] = ((int)options.WorkerMaxIdle.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            ["HANDS_MAX_CONCURRENT_SPAWNS"] = options.MaxConcurrentSpawns.ToString(CultureInfo.InvariantCulture),
            // No config-file watchers: an inotify watch is state CRIU cannot carry through hibernation.
            ["DOTNET_hostBuilder__reloadConfigOnChange"] = "false",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
            ["DOTNET_NOLOGO"] = "1",
        };
        if (sandboxApi.ApiKey is { } key)
        {
            env["TENSORLAKE_API_KEY"] = key;
        }

        foreach (var passThrough in new[] { "SANDBOX_IMAGE_NAME", "WEBHOOK_DRAIN_SECONDS", "JANITOR_SECONDS", "HANDS_FORK_ACCESS", "TENSORLAKE_ORGANIZATION_ID", "TENSORLAKE_PROJECT_ID" })
        {
            if (Settings.Get(passThrough) is { } value)
            {
                env[passThrough] = value;
            }
        }

        return env;
    }

    /// <summary>Prints status, URLs and health; waits for the receiver to answer when <paramref name="wake"/>.</summary>
    private static async Task<int> PrintStatusAsync(TensorlakeClient sandboxes, string name, bool wake, CancellationToken ct)
    {
        var info = await sandboxes.GetAsync(name, ct);
        var publicUrl = TensorlakeClient.PortUrl(info.IngressEndpoint!, info.CanonicalId, Port);
        Console.WriteLine($"sandbox     {name} ({info.CanonicalId}), {info.Status}{(info.SuspendTier is { } tier ? $" ({tier})" : "")}");
        Console.WriteLine($"public URL  {publicUrl}");
        Console.WriteLine($"health URL  {publicUrl}healthz");
        if (info.Status == SandboxStatus.Suspended && !wake)
        {
            Console.WriteLine("health      not checked: the receiver is suspended and wakes on the next request");
            return 0;
        }

        using var http = LocalhostNames.CreateHttpClient(TimeSpan.FromSeconds(10));
        var deadline = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(wake ? 60 : 10);
        string? last = null;
        while (DateTimeOffset.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(publicUrl, "healthz"), ct);
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(ct)}";
                if (response.IsSuccessStatusCode)
                {
                    Console.WriteLine($"health      {last}");
                    return 0;
                }
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
                last = "no answer within 10 s";
            }

            await Task.Delay(250, ct);
        }

        Console.WriteLine($"health      failing: {last} (see: hands webhook-sandbox --logs)");
        return 1;
    }
}
