using System.Globalization;
using Hands.Protocol;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Orchestrator;

/// <summary>
/// Starts <c>hands-worker run</c> for one work item inside the session's sandbox, holding that item's sessions token
/// and nothing more. The token travels as a work secret re-encoded to carry only <c>sessions_token</c> and
/// <c>api_base_url</c>, written to the worker's stdin (<c>--work-secret-file /dev/stdin</c>, as the official worker
/// reads it) and closed: it is never in the process's environment, argv, an image or a file. The environment key, the
/// API key and the webhook signing key stay on the orchestrator's host. The ids (<c>ANTHROPIC_ENVIRONMENT_ID</c>,
/// <c>_SESSION_ID</c>, <c>_WORK_ID</c>) and <c>_BASE_URL</c> ride the environment; they are not secrets.
/// </summary>
public sealed class WorkerLauncher(OrchestratorOptions options)
{
    /// <summary>Marks a process the engine kills in every memory fork before the fork's network comes up.</summary>
    public const string ForkPolicyVariable = "HANDS_FORK_POLICY";

    /// <summary>The worker process's name in the sandbox: one per work item, so a duplicate delivery finds it.</summary>
    public static string ProcessName(string workId) => "hands-worker-" + workId;

    /// <summary>
    /// Starts the worker for this claim of the item and returns the process name. A worker of this claim already
    /// started (a retried start) is given the secret if it has not had it; a worker left from an earlier claim is
    /// stopped first.
    /// </summary>
    /// <param name="sandbox">The session's sandbox.</param>
    /// <param name="item">The claimed work item.</param>
    /// <param name="cancellationToken">Cancels the start.</param>
    /// <param name="extraEnvironment">More variables for the worker (the fork key, when fork access is on).</param>
    public async Task<string> StartAsync(SandboxProxyClient sandbox, WorkItem item, CancellationToken cancellationToken, IReadOnlyDictionary<string, string>? extraEnvironment = null)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        ArgumentNullException.ThrowIfNull(item);
        var name = ProcessName(item.Id);
        var secret = SessionOnlySecret(item);
        if (await RunningAsync(sandbox, name, cancellationToken).ConfigureAwait(false) is { } running)
        {
            // A retry of a start whose answer was lost: stdin still open means the secret never got there (it is closed
            // right after it is written), so it is written now.
            if (running.StdinWritable)
            {
                await HandOverSecretAsync(sandbox, running.Pid.ToString(CultureInfo.InvariantCulture), secret, cancellationToken).ConfigureAwait(false);
                return name;
            }

            // A worker of an earlier claim of this item (the work id outlives a lapsed lease): its token was revoked when
            // the item was claimed again, so it can only fail. It is stopped and a worker with this claim's token
            // started; a call it was running is answered by the new one as interrupted, never run twice (its journal).
            await StopAsync(sandbox, running, cancellationToken).ConfigureAwait(false);
        }

        var env = new Dictionary<string, string>
        {
            ["ANTHROPIC_ENVIRONMENT_ID"] = options.EnvironmentId,
            ["ANTHROPIC_SESSION_ID"] = item.Data.Id,
            ["ANTHROPIC_WORK_ID"] = item.Id,
            ["ANTHROPIC_BASE_URL"] = options.EffectiveWorkerBaseUrl.ToString().TrimEnd('/'),
            // The worker holds the session's credentials: a memory fork of this sandbox must not run a copy of it.
            [ForkPolicyVariable] = "terminate",
        };
        foreach (var (key, value) in extraEnvironment ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        var started = await sandbox.StartProcessAsync(new StartProcessRequest
        {
            Command = options.WorkerCommand,
            Args = ["run", "--work-secret-file", "/dev/stdin", "--workdir", options.Workdir, "--max-idle", ((int)options.WorkerMaxIdle.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s"],
            Env = env,
            Name = name,
            StdinMode = "pipe",
        }, cancellationToken).ConfigureAwait(false);
        // By pid, not name: the name resolves to the newest process of that name. A worker whose secret did not get
        // through is killed, so a retry starts a new one rather than finding this one running and waiting on it; one
        // whose sender died right here gives up after 60 s by itself.
        await HandOverSecretAsync(sandbox, started.Pid.ToString(CultureInfo.InvariantCulture), secret, cancellationToken).ConfigureAwait(false);
        return name;
    }

    private Task StopAsync(SandboxProxyClient sandbox, ProcessInfo stale, CancellationToken cancellationToken) =>
        KillAndWaitAsync(sandbox, stale.Pid, "the worker of an earlier claim", options.TimeProvider, TimeSpan.FromSeconds(5), cancellationToken);

    /// <summary>SIGKILLs a sandbox process by pid and waits (polling every 50 ms, up to <paramref name="budget"/>) until it no longer runs.</summary>
    internal static async Task KillAndWaitAsync(SandboxProxyClient sandbox, int processId, string what, TimeProvider time, TimeSpan budget,
        CancellationToken cancellationToken)
    {
        var pid = processId.ToString(CultureInfo.InvariantCulture);
        await sandbox.KillProcessAsync(pid, cancellationToken).ConfigureAwait(false);
        var poll = TimeSpan.FromMilliseconds(50);
        for (var waited = TimeSpan.Zero; waited < budget; waited += poll)
        {
            if ((await sandbox.GetProcessAsync(pid, cancellationToken).ConfigureAwait(false)).Status != "running")
            {
                return;
            }

            await Task.Delay(poll, time, cancellationToken).ConfigureAwait(false);
        }

        throw new OrchestratorException($"{what} (pid {pid}) did not stop after SIGKILL");
    }

    private static async Task HandOverSecretAsync(SandboxProxyClient sandbox, string pid, string secret, CancellationToken cancellationToken)
    {
        try
        {
            await sandbox.WriteStdinAsync(pid, System.Text.Encoding.UTF8.GetBytes(secret), cancellationToken).ConfigureAwait(false);
            await sandbox.CloseStdinAsync(pid, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TensorlakeException or HttpRequestException or OperationCanceledException)
        {
            try
            {
                await sandbox.KillProcessAsync(pid, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception killError) when (killError is TensorlakeException or HttpRequestException)
            {
                // It exits by itself within 60 s without a secret.
            }

            throw;
        }
    }

    /// <summary>
    /// The item's work secret cut down to its sessions token and API base URL; an item without a sessions token is
    /// refused rather than served with the environment key.
    /// </summary>
    public static string SessionOnlySecret(WorkItem item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var decoded = WorkSecretCodec.TryDecode(item.Secret);
        if (decoded?.SessionsToken is not { Length: > 0 } token)
        {
            throw new OrchestratorException($"work item {item.Id} carries no sessions token in its secret; its worker would need the environment key, which never enters a session's sandbox");
        }

        return WorkSecretCodec.Encode(new WorkSecret { SessionsToken = token, ApiBaseUrl = decoded.ApiBaseUrl });
    }

    /// <summary>True while the named worker process runs.</summary>
    public static async Task<bool> IsRunningAsync(SandboxProxyClient sandbox, string name, CancellationToken cancellationToken) =>
        await RunningAsync(sandbox, name, cancellationToken).ConfigureAwait(false) is not null;

    /// <summary>The named worker process while it runs, else null.</summary>
    private static async Task<ProcessInfo?> RunningAsync(SandboxProxyClient sandbox, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        try
        {
            var process = await sandbox.GetProcessAsync(name, cancellationToken).ConfigureAwait(false);
            return process.Status == "running" ? process : null;
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return null;
        }
    }
}
