using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Hands.Protocol.Client;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Orchestrator;

/// <summary>
/// The webhook receiver run inside its own sandbox (the recommended mode): the sandbox exposes the receiver's port
/// publicly, is suspended when idle and woken by the next delivery, which the receiver then handles. The receiver's
/// credentials ride its process's environment, never the image or a file.
/// </summary>
public sealed class WebhookReceiverSandbox(TensorlakeClient sandboxes, string name, TimeProvider? timeProvider = null)
{
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>The receiver's port inside its sandbox.</summary>
    public const int Port = 5051;

    /// <summary>The receiver's process name inside its sandbox.</summary>
    public const string ProcessName = "hands-webhook";

    /// <summary>Where the native receiver (<c>hands-receiver</c>) is copied inside the sandbox.</summary>
    public const string InstallDirectory = "/opt/hands/receiver";

    /// <summary>The native receiver's file name, beside <c>hands</c> in a release and in <c>artifacts/hands-receiver/</c> of a clone.</summary>
    public const string BinaryName = "hands-receiver";

    /// <summary>Where the native receiver runs from inside the sandbox.</summary>
    public const string BinaryPath = InstallDirectory + "/" + BinaryName;

    /// <summary>
    /// The id (never the secret) of the webhook endpoint whose signing secret the running receiver was started with, so a
    /// later <c>--register</c> can tell whether that endpoint is still the one to keep.
    /// </summary>
    public const string EndpointFile = "/opt/hands/receiver-endpoint";

    private static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Settings the receiver reads as the host's orchestrator does, handed on unchanged when set.</summary>
    public static readonly IReadOnlyList<string> PassThroughSettings =
        ["SANDBOX_IMAGE_NAME", "WEBHOOK_DRAIN_SECONDS", "JANITOR_SECONDS", "HANDS_FORK_ACCESS", "TENSORLAKE_ORGANIZATION_ID", "TENSORLAKE_PROJECT_ID"];

    /// <summary>The sandbox's name.</summary>
    public string Name => name;

    /// <summary>Where deliveries reach the receiver: its port on the provider's ingress.</summary>
    public Uri PublicUrl(SandboxInfo info)
    {
        ArgumentNullException.ThrowIfNull(info);
        var ingress = info.IngressEndpoint ?? throw new OrchestratorException($"the provider did not say where {name}'s ports are served (no ingress_endpoint)");
        return TensorlakeClient.PortUrl(ingress, info.CanonicalId, Port);
    }

    /// <summary>The sandbox as the provider reports it now.</summary>
    public Task<SandboxInfo> GetAsync(CancellationToken cancellationToken) => sandboxes.GetAsync(name, cancellationToken);

    /// <summary>Terminates the sandbox, and the receiver with it.</summary>
    public Task TerminateAsync(CancellationToken cancellationToken) => sandboxes.DeleteAsync(name, cancellationToken);

    /// <summary>What the receiver has printed.</summary>
    public async Task<IReadOnlyList<string>> ReadLogsAsync(CancellationToken cancellationToken)
    {
        var output = await sandboxes.Proxy(await GetAsync(cancellationToken).ConfigureAwait(false)).GetOutputAsync(ProcessName, cancellationToken: cancellationToken).ConfigureAwait(false);
        return output.Lines;
    }

    /// <summary>
    /// The running sandbox: a suspended one is resumed, a missing or ended one is created from <paramref name="image"/>
    /// (null: the provider's default) with <paramref name="timeoutSeconds"/> of idle before suspension.
    /// </summary>
    public async Task<SandboxInfo> GetOrCreateAsync(string? image, int timeoutSeconds, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        try
        {
            var existing = await sandboxes.GetAsync(name, cancellationToken).ConfigureAwait(false);
            if (existing.Status == SandboxStatus.Suspended)
            {
                await sandboxes.ResumeAsync(name, cancellationToken).ConfigureAwait(false);
            }

            if (existing.Status is not (SandboxStatus.Terminated or SandboxStatus.Timeout))
            {
                return await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running], ReadyTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
            }
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
        }

        await sandboxes.CreateAsync(new CreateSandboxRequest
        {
            Name = name,
            Image = image,
            TimeoutSecs = timeoutSeconds,
            ExposedPorts = [Port],
            // The sender cannot carry a Tensorlake key; every delivery is authenticated by its signature instead.
            AllowUnauthenticatedAccess = true,
        }, cancellationToken).ConfigureAwait(false);
        progress?.Report($"created sandbox {name}");
        return await sandboxes.WaitForStatusAsync(name, [SandboxStatus.Running], ReadyTimeout, cancellationToken: cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// What runs in the sandbox now: null when no receiver runs, else the webhook endpoint id it was started for
    /// (<see cref="EndpointFile"/>; empty when it was started with a signing key given by hand).
    /// </summary>
    public async Task<string?> RunningEndpointAsync(SandboxInfo info, CancellationToken cancellationToken)
    {
        if (!await WorkerLauncher.IsRunningAsync(sandboxes.Proxy(info), ProcessName, cancellationToken).ConfigureAwait(false))
        {
            return null;
        }

        return await RecordedEndpointAsync(info, cancellationToken).ConfigureAwait(false) ?? "";
    }

    /// <summary>The webhook endpoint id recorded in the receiver's sandbox (<see cref="EndpointFile"/>), running or not; null when there is none.</summary>
    public async Task<string?> RecordedEndpointAsync(SandboxInfo info, CancellationToken cancellationToken)
    {
        try
        {
            var id = Encoding.UTF8.GetString(await sandboxes.Proxy(info).ReadFileAsync(EndpointFile, cancellationToken).ConfigureAwait(false)).Trim();
            return id.Length == 0 ? null : id;
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Starts the receiver unless it runs already, after copying the native <c>hands-receiver</c> at
    /// <paramref name="receiverBinary"/> into the sandbox (once per build: its content's hash is the version; the image
    /// needs no .NET runtime, only glibc 2.34+ and <c>chmod</c>, docs/orchestrator.md). Returns whether it started it.
    /// With <paramref name="replace"/> a running receiver is stopped first and started again with
    /// <paramref name="environment"/> (a new signing key); <paramref name="endpointId"/> is recorded in
    /// <see cref="EndpointFile"/> (none: the file is removed).
    /// </summary>
    public async Task<bool> EnsureReceiverAsync(SandboxInfo info, string receiverBinary, IReadOnlyDictionary<string, string> environment,
        IProgress<string>? progress, CancellationToken cancellationToken, string? endpointId = null, bool replace = false)
    {
        var proxy = sandboxes.Proxy(info);
        if (await WorkerLauncher.IsRunningAsync(proxy, ProcessName, cancellationToken).ConfigureAwait(false))
        {
            if (!replace)
            {
                return false;
            }

            progress?.Report("stopping the running receiver (its signing key is replaced)...");
            await StopReceiverAsync(proxy, cancellationToken).ConfigureAwait(false);
        }

        await InstallAsync(proxy, receiverBinary, progress, cancellationToken).ConfigureAwait(false);
        if (endpointId is { Length: > 0 })
        {
            await proxy.WriteFileAsync(EndpointFile, Encoding.UTF8.GetBytes(endpointId), cancellationToken).ConfigureAwait(false);
        }
        else
        {
            try
            {
                await proxy.DeleteFileAsync(EndpointFile, cancellationToken).ConfigureAwait(false);
            }
            catch (TensorlakeException ex) when (ex.IsNotFound)
            {
            }
        }

        await proxy.StartProcessAsync(new StartProcessRequest
        {
            Command = BinaryPath,
            // Only where to listen rides argv; every credential is in the process's environment.
            Args = ["--urls", $"http://0.0.0.0:{Port.ToString(CultureInfo.InvariantCulture)}"],
            Env = new Dictionary<string, string>(environment),
            Name = ProcessName,
            WorkingDir = "/",
        }, cancellationToken).ConfigureAwait(false);
        return true;
    }

    private async Task StopReceiverAsync(SandboxProxyClient proxy, CancellationToken cancellationToken) =>
        await WorkerLauncher.KillAndWaitAsync(proxy, (await proxy.GetProcessAsync(ProcessName, cancellationToken).ConfigureAwait(false)).Pid,
            $"the receiver in {name}", _time, TimeSpan.FromSeconds(10), cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Copies the binary in unless the copy there has the same content (<c>.installed</c> holds its SHA-256), then marks
    /// it executable: the sandbox's file API writes plain files, so <c>chmod</c> runs in the sandbox.
    /// </summary>
    private static async Task InstallAsync(SandboxProxyClient proxy, string binary, IProgress<string>? progress, CancellationToken cancellationToken)
    {
        var content = await File.ReadAllBytesAsync(binary, cancellationToken).ConfigureAwait(false);
        var version = Convert.ToHexStringLower(SHA256.HashData(content));
        var marker = $"{InstallDirectory}/.installed";
        try
        {
            if (Encoding.UTF8.GetString(await proxy.ReadFileAsync(marker, cancellationToken).ConfigureAwait(false)) == version)
            {
                return;
            }
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
        }

        progress?.Report($"installing {BinaryName} into the sandbox ({content.Length / (1024 * 1024)} MiB)...");
        await proxy.WriteFileAsync(BinaryPath, content, cancellationToken).ConfigureAwait(false);
        var chmod = await proxy.RunAsync(new RunProcessRequest { Command = "chmod", Args = ["755", BinaryPath] }, cancellationToken).ConfigureAwait(false);
        if (chmod.ExitCode != 0)
        {
            throw new OrchestratorException($"could not make {BinaryPath} executable in the receiver's sandbox (chmod exited {chmod.ExitCode}: {chmod.Stderr.Trim()}); its image needs chmod (coreutils or busybox)");
        }

        await proxy.WriteFileAsync(marker, Encoding.UTF8.GetBytes(version), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The receiver's environment: its credentials and settings, with the host's loopback URLs as seen from inside, and
    /// the <see cref="PassThroughSettings"/> in <paramref name="passThrough"/>.
    /// </summary>
    public static Dictionary<string, string> ReceiverEnvironment(OrchestratorOptions options, string signingKey, TensorlakeClientOptions sandboxApi,
        IReadOnlyDictionary<string, string> passThrough)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(sandboxApi);
        ArgumentNullException.ThrowIfNull(passThrough);
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
        };
        if (sandboxApi.ApiKey is { } key)
        {
            env["TENSORLAKE_API_KEY"] = key;
        }

        if (options.SandboxPool is { Length: > 0 } pool)
        {
            env["HANDS_SANDBOX_POOL"] = pool;
        }

        foreach (var setting in PassThroughSettings)
        {
            if (passThrough.TryGetValue(setting, out var value))
            {
                env[setting] = value;
            }
        }

        return env;
    }

    /// <summary>Asks the receiver's <c>/healthz</c> until it answers 2xx or <paramref name="budget"/> passes.</summary>
    public static async Task<ReceiverHealth> WaitForHealthAsync(Uri publicUrl, TimeSpan budget, CancellationToken cancellationToken)
    {
        using var http = LocalhostNames.CreateHttpClient(TimeSpan.FromSeconds(10));
        var deadline = DateTimeOffset.UtcNow + budget;
        string? last = null;
        while (DateTimeOffset.UtcNow < deadline)
        {
            try
            {
                using var response = await http.GetAsync(new Uri(publicUrl, "healthz"), cancellationToken).ConfigureAwait(false);
                last = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false)}";
                if (response.IsSuccessStatusCode)
                {
                    return new ReceiverHealth(true, last);
                }
            }
            catch (HttpRequestException ex)
            {
                last = ex.Message;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                last = "no answer within 10 s";
            }

            await Task.Delay(250, cancellationToken).ConfigureAwait(false);
        }

        return new ReceiverHealth(false, last);
    }
}
