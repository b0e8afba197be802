using System.Globalization;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Orchestrator;

/// <summary>
/// Starts <c>hands-worker run</c> for one work item inside the session's sandbox. Every credential and id rides the
/// process's environment (never argv, an image or a file): <c>ANTHROPIC_ENVIRONMENT_KEY</c>, <c>_ENVIRONMENT_ID</c>,
/// <c>_SESSION_ID</c>, <c>_WORK_ID</c>, <c>_WORK_SECRET</c> and <c>_BASE_URL</c>.
/// </summary>
public sealed class WorkerLauncher(OrchestratorOptions options)
{
    /// <summary>Marks a process the engine kills in every memory fork before the fork's network comes up.</summary>
    public const string ForkPolicyVariable = "HANDS_FORK_POLICY";

    /// <summary>The worker process's name in the sandbox: one per work item, so a duplicate delivery finds it.</summary>
    public static string ProcessName(string workId) => "hands-worker-" + workId;

    /// <summary>
    /// Starts the worker unless one for this item is already running (a duplicate delivery); returns the process name.
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
        if (await IsRunningAsync(sandbox, name, cancellationToken).ConfigureAwait(false))
        {
            return name;
        }

        var env = new Dictionary<string, string>
        {
            ["ANTHROPIC_ENVIRONMENT_ID"] = options.EnvironmentId,
            ["ANTHROPIC_ENVIRONMENT_KEY"] = options.EnvironmentKey,
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

        if (item.Secret is { Length: > 0 } secret)
        {
            env["ANTHROPIC_WORK_SECRET"] = secret;
        }

        await sandbox.StartProcessAsync(new StartProcessRequest
        {
            Command = options.WorkerCommand,
            Args = ["run", "--workdir", options.Workdir, "--max-idle", ((int)options.WorkerMaxIdle.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s"],
            Env = env,
            Name = name,
        }, cancellationToken).ConfigureAwait(false);
        return name;
    }

    /// <summary>True while the named worker process runs.</summary>
    public static async Task<bool> IsRunningAsync(SandboxProxyClient sandbox, string name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        try
        {
            return (await sandbox.GetProcessAsync(name, cancellationToken).ConfigureAwait(false)).Status == "running";
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return false;
        }
    }
}
