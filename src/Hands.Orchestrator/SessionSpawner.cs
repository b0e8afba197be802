using Hands.Sandboxes.Models;
using System.Collections.Concurrent;
using System.Diagnostics;
using Hands.Common;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>What became of one claimed work item.</summary>
/// <param name="WorkId">The item.</param>
/// <param name="SessionId">Its session.</param>
/// <param name="SandboxName">The session's sandbox.</param>
/// <param name="Succeeded">A worker attached (or the item was already stopped).</param>
/// <param name="Detail">What happened, or why it failed.</param>
/// <param name="Elapsed">From the claim to the outcome.</param>
/// <param name="How">How the sandbox was obtained, when it was.</param>
/// <param name="HandOff">How the lease hand-off ended, when it was tried.</param>
/// <param name="ProviderAtCapacity">
/// The sandbox provider refused the sandbox for want of capacity (429): the item was released to wait in the queue, and
/// the try does not count towards <see cref="OrchestratorOptions.MaxSpawnAttempts"/>.
/// </param>
public sealed record SpawnOutcome(string WorkId, string SessionId, string SandboxName, bool Succeeded, string Detail, TimeSpan Elapsed,
    SandboxAcquisition? How = null, HandOffResult? HandOff = null, bool ProviderAtCapacity = false);

/// <summary>
/// One acknowledged work item to a worker attached in the session's sandbox: claim the lease, get-or-create the
/// sandbox, start the worker, hold the lease until the worker takes it. A failure is reported and the item released
/// (its lease left to lapse at once) so the next drain tries again; after
/// <see cref="OrchestratorOptions.MaxSpawnAttempts"/> failures for one item it is left to lapse without another try
/// from this orchestrator.
/// </summary>
/// <remarks>
/// Retries live at exactly one layer per kind of failure. A single Tensorlake request that failed for want of an answer
/// or with 502/503/504 is retried by the <see cref="TensorlakeClient"/> itself, and only when it is idempotent; the
/// spawner wraps no client call in a retry of its own (it did, and one GET became up to 4 × 6 = 24 requests). Anything
/// the client gives up on (429 and 500 included, and every failure of a non-idempotent call) fails the spawn, and the
/// spawn as a whole is what is tried again: the item is released and claimed afresh by the next drain or poll, at most
/// <see cref="OrchestratorOptions.MaxSpawnAttempts"/> times. That outer retry is safe because every step is
/// get-or-create (the sandbox by its session's name, the worker by its process name) or starts over (the lease).
/// A provider at capacity (429) is not a failed attempt: the item is released every time, so it waits in the queue
/// rather than held for a whole lease TTL, and <see cref="WorkQueueOrchestrator"/> pauses claiming for a while.
/// </remarks>
public sealed class SessionSpawner
{
    private readonly OrchestratorOptions _options;
    private readonly SessionSandboxes _sandboxes;
    private readonly TensorlakeClient _provider;
    private readonly WorkerLauncher _launcher;
    private readonly SkillStager _skills;
    private readonly LeaseHandOff _lease;
    private readonly ConcurrentDictionary<string, int> _failures = new(StringComparer.Ordinal);

    public SessionSpawner(ManagedAgentsClient environmentClient, TensorlakeClient provider, OrchestratorOptions options)
    {
        _options = options;
        _provider = provider;
        _sandboxes = new SessionSandboxes(provider, options);
        _launcher = new WorkerLauncher(options);
        _skills = new SkillStager(environmentClient, options.Logger);
        _lease = new LeaseHandOff(environmentClient, options);
    }

    /// <summary>Brings the item's worker up and hands it the lease; never throws for a failed spawn (see the outcome).</summary>
    public async Task<SpawnOutcome> SpawnAsync(WorkItem item, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(item);
        var name = SandboxNames.ForSession(item.Data.Id);
        using var span = OrchestratorTelemetry.StartSpawn(_options.EnvironmentId, item.Id, item.Data.Id, name);
        var outcome = await SpawnCoreAsync(item, name, span, cancellationToken).ConfigureAwait(false);
        var acquisition = outcome.How is { } how ? OrchestratorTelemetry.Snake(how) : null;
        var handOff = outcome.HandOff is { } h ? OrchestratorTelemetry.Snake(h) : null;
        if (span is not null)
        {
            span.SetTag("hands.sandbox.acquisition", acquisition);
            span.SetTag("hands.lease.hand_off", handOff);
            if (outcome.Succeeded)
            {
                span.SetStatus(ActivityStatusCode.Ok);
            }
            else
            {
                span.SetStatus(ActivityStatusCode.Error);
                span.SetTag("error.type", handOff ?? "spawn_failed");
            }
        }

        if (handOff is not null)
        {
            OrchestratorTelemetry.HandOffs.Add(1, new KeyValuePair<string, object?>("hands.outcome", handOff));
        }

        OrchestratorTelemetry.SpawnDuration.Record(outcome.Elapsed.TotalSeconds, new TagList
        {
            { "hands.outcome", outcome.Succeeded ? "ok" : "error" },
            { "hands.sandbox.acquisition", acquisition },
        });
        return outcome;
    }

    private async Task<SpawnOutcome> SpawnCoreAsync(WorkItem item, string name, Activity? span, CancellationToken cancellationToken)
    {
        var watch = Stopwatch.StartNew();
        string? lastBeat = null;
        SandboxAcquisition? how = null;
        try
        {
            lastBeat = await _lease.ClaimAsync(item, cancellationToken).ConfigureAwait(false);
            if (lastBeat is null)
            {
                return new SpawnOutcome(item.Id, item.Data.Id, name, true, "item already stopped", watch.Elapsed);
            }

            // No retry here: the client retries its idempotent requests, and a failed spawn is retried whole (see remarks).
            var step = OrchestratorTelemetry.StartStep("sandbox.acquire");
            SandboxInfo sandbox;
            SandboxAcquisition acquired;
            try
            {
                (sandbox, acquired) = await _sandboxes.AcquireAsync(item.Data.Id, cancellationToken).ConfigureAwait(false);
                step?.SetTag("hands.sandbox.id", sandbox.CanonicalId);
                step?.SetTag("hands.sandbox.acquisition", OrchestratorTelemetry.Snake(acquired));
                OrchestratorTelemetry.End(step);
            }
            catch (Exception ex)
            {
                OrchestratorTelemetry.End(step, ex);
                throw;
            }

            how = acquired;
            var proxy = _provider.Proxy(sandbox);
            var forkEnvironment = await ForkEnvironmentAsync(sandbox, cancellationToken).ConfigureAwait(false);
            await _skills.StageAsync(proxy, item.Data.Id, cancellationToken).ConfigureAwait(false);
            if (_options.RestrictWorkerApiRoutes)
            {
                await RestrictApiRoutesAsync(sandbox.CanonicalId, item, cancellationToken).ConfigureAwait(false);
            }
            step = OrchestratorTelemetry.StartStep("worker.start");
            string process;
            try
            {
                process = await _launcher.StartAsync(proxy, item, cancellationToken, WorkerEnvironment(forkEnvironment, span)).ConfigureAwait(false);
                OrchestratorTelemetry.End(step);
            }
            catch (Exception ex)
            {
                OrchestratorTelemetry.End(step, ex);
                throw;
            }

            _options.Logger.LogInformation("work {Work} session {Session}: worker started in {Sandbox} ({How})", item.Id, item.Data.Id, name, acquired);
            step = OrchestratorTelemetry.StartStep("lease.hand_off");
            HandOffResult handOff;
            string? renewed;
            try
            {
                (handOff, renewed) = await _lease.HoldUntilTakenAsync(item, lastBeat, proxy, process, cancellationToken).ConfigureAwait(false);
                step?.SetTag("hands.lease.hand_off", OrchestratorTelemetry.Snake(handOff));
                OrchestratorTelemetry.End(step);
            }
            catch (Exception ex)
            {
                OrchestratorTelemetry.End(step, ex);
                throw;
            }

            // A release must carry the latest renewal's echo, or it is refused and the item waits out its whole TTL.
            lastBeat = renewed;
            if (handOff is HandOffResult.HandedOff or HandOffResult.ItemStopped)
            {
                _failures.TryRemove(item.Id, out _);
                _options.Logger.LogInformation("work {Work}: lease handed to the worker after {Ms} ms", item.Id, (long)watch.Elapsed.TotalMilliseconds);
                return new SpawnOutcome(item.Id, item.Data.Id, name, true, handOff == HandOffResult.HandedOff ? "worker attached" : "item stopped",
                    watch.Elapsed, how, handOff);
            }

            var why = handOff == HandOffResult.WorkerExited
                ? $"the worker exited before taking the lease: {await TailAsync(proxy, process, cancellationToken).ConfigureAwait(false)}"
                : $"the worker did not take the lease within {_options.HandOffTimeout.TotalSeconds:0} s";
            if (handOff == HandOffResult.TimedOut)
            {
                await StopQuietlyAsync(proxy, process).ConfigureAwait(false);
            }

            return await FailAsync(item, lastBeat, name, why, watch, how, handOff, cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.Status == 429)
        {
            // Transient by definition: released now (never held a TTL), and not counted towards MaxSpawnAttempts.
            await _lease.ReleaseAsync(item, lastBeat, cancellationToken).ConfigureAwait(false);
            _options.Logger.LogWarning("work {Work} session {Session}: the sandbox provider is at capacity; released to wait in the queue: {Why}",
                item.Id, item.Data.Id, ex.Message);
            return new SpawnOutcome(item.Id, item.Data.Id, name, false, ex.Message, watch.Elapsed, how, null, ProviderAtCapacity: true);
        }
        catch (Exception ex) when (ex is HandsException or HttpRequestException or TimeoutException)
        {
            return await FailAsync(item, lastBeat, name, ex.Message, watch, how, null, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The worker's variables beyond its ids: the fork key's (when fork access is on), the spawn span's context as
    /// <c>TRACEPARENT</c>/<c>TRACESTATE</c> (so the worker's <c>anthropic.environment.work</c> is its child), and where
    /// to export traces when <see cref="OrchestratorOptions.WorkerOtlpEndpoint"/> is set. None of them is a secret.
    /// </summary>
    private Dictionary<string, string> WorkerEnvironment(IReadOnlyDictionary<string, string>? fork, Activity? span)
    {
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in fork ?? new Dictionary<string, string>())
        {
            env[key] = value;
        }

        if (span is { IdFormat: ActivityIdFormat.W3C, Id: { } id })
        {
            env["TRACEPARENT"] = id;
            if (span.TraceStateString is { Length: > 0 } state)
            {
                env["TRACESTATE"] = state;
            }
        }

        if (_options.WorkerOtlpEndpoint is { } endpoint)
        {
            env["OTEL_EXPORTER_OTLP_ENDPOINT"] = WorkerUrls.FromHost(endpoint).ToString().TrimEnd('/');
            if (_options.WorkerOtlpProtocol is { Length: > 0 } protocol)
            {
                env["OTEL_EXPORTER_OTLP_PROTOCOL"] = protocol;
            }
        }

        return env;
    }

    /// <summary>
    /// Lets the sandbox send the API only what this item's worker needs (the six routes of a self-hosted worker), at the
    /// engine's host-port forward; set before each worker starts, since a session's sandbox outlives a work item.
    /// </summary>
    private async Task RestrictApiRoutesAsync(string sandboxId, WorkItem item, CancellationToken cancellationToken)
    {
        var api = _options.EffectiveWorkerBaseUrl;
        if (!string.Equals(api.Host, WorkerUrls.HostName, StringComparison.OrdinalIgnoreCase))
        {
            throw new OrchestratorException($"HANDS_WORKER_API_ROUTES=session is enforced at the local engine's host-port forward, but workers reach the API at {api}, which no forward carries");
        }

        var (session, environment, work) = (item.Data.Id, item.EnvironmentId, item.Id);
        await _provider.UpdateAsync(sandboxId, new UpdateSandboxRequest
        {
            HostPortRoutes = new()
            {
                [api.Port] =
                [
                    $"GET /v1/sessions/{session}",
                    $"GET /v1/sessions/{session}/events",
                    $"GET /v1/sessions/{session}/events/stream",
                    $"POST /v1/sessions/{session}/events",
                    $"POST /v1/environments/{environment}/work/{work}/heartbeat",
                    $"POST /v1/environments/{environment}/work/{work}/stop",
                ],
            },
        }, cancellationToken).ConfigureAwait(false);
    }

    private async Task<SpawnOutcome> FailAsync(WorkItem item, string? lastBeat, string name, string why, Stopwatch watch, SandboxAcquisition? how,
        HandOffResult? handOff, CancellationToken cancellationToken)
    {
        var attempts = _failures.AddOrUpdate(item.Id, 1, (_, n) => n + 1);
        if (attempts < _options.MaxSpawnAttempts)
        {
            await _lease.ReleaseAsync(item, lastBeat, cancellationToken).ConfigureAwait(false);
            _options.Logger.LogWarning("work {Work} session {Session}: spawn failed (attempt {Attempt} of {Max}), released for another try: {Why}",
                item.Id, item.Data.Id, attempts, _options.MaxSpawnAttempts, why);
        }
        else
        {
            _options.Logger.LogError("work {Work} session {Session}: spawn failed {Attempt} times; this orchestrator gives up on it: {Why}",
                item.Id, item.Data.Id, attempts, why);
        }

        return new SpawnOutcome(item.Id, item.Data.Id, name, false, why, watch.Elapsed, how, handOff);
    }

    /// <summary>The last lines the worker printed (it never prints credentials), to say why it exited.</summary>
    private static async Task<string> TailAsync(SandboxProxyClient sandbox, string process, CancellationToken cancellationToken)
    {
        try
        {
            var info = await sandbox.GetProcessAsync(process, cancellationToken).ConfigureAwait(false);
            var output = await sandbox.GetOutputAsync(process, cancellationToken: cancellationToken).ConfigureAwait(false);
            var lines = output.Lines.TakeLast(3);
            return $"exit {info.ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? info.Status}: {string.Join(" | ", lines)}";
        }
        catch (TensorlakeException ex)
        {
            return ex.Message;
        }
    }

    private static async Task StopQuietlyAsync(SandboxProxyClient sandbox, string process)
    {
        try
        {
            await sandbox.KillProcessAsync(process).ConfigureAwait(false);
        }
        catch (TensorlakeException)
        {
            // Already gone.
        }
    }
    /// <summary>
    /// With fork access on, a key the provider scopes to this one sandbox, and where to use it from inside (the
    /// provider's API URL as the sandbox names the host). Fork keys are a Hands engine extension.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, string>?> ForkEnvironmentAsync(SandboxInfo sandbox, CancellationToken cancellationToken)
    {
        if (_options.ForkAccess == WorkerForkAccess.None)
        {
            return null;
        }

        string key;
        try
        {
            key = await _provider.CreateForkKeyAsync(sandbox.CanonicalId, cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.Status is 404 or 405)
        {
            throw new OrchestratorException($"HANDS_FORK_ACCESS needs a provider that issues fork keys (the Hands engine); {_provider.Options.ApiUrl} does not ({ex.Status})", ex);
        }

        return new Dictionary<string, string>
        {
            ["HANDS_FORK_KEY"] = key,
            ["HANDS_FORK_API_URL"] = WorkerUrls.FromHost(_provider.Options.ApiUrl).ToString().TrimEnd('/'),
            ["HANDS_FORK_SANDBOX"] = sandbox.CanonicalId,
            ["HANDS_FORK_ACCESS"] = _options.ForkAccess == WorkerForkAccess.Bash ? "bash" : "tool",
        };
    }
}
