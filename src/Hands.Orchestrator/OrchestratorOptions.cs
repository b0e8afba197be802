using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hands.Orchestrator;

/// <summary>
/// Settings of an orchestrator. The names of the reference integration's variables are given beside each one; the
/// CLI reads them (see <c>docs/orchestrator.md</c> for the precedence of flags, environment and <c>.env</c> files).
/// </summary>
public sealed class OrchestratorOptions
{
    /// <summary>The environment whose queue is served (<c>ANTHROPIC_ENVIRONMENT_ID</c>).</summary>
    public required string EnvironmentId { get; init; }

    /// <summary>The environment key (<c>ANTHROPIC_ENVIRONMENT_KEY</c>); also passed to each worker, per process.</summary>
    public required string EnvironmentKey { get; init; }

    /// <summary>The Managed Agents API as this orchestrator reaches it (<c>ANTHROPIC_BASE_URL</c>).</summary>
    public Uri BaseUrl { get; init; } = new("https://api.anthropic.com");

    /// <summary>
    /// The API as a worker inside a sandbox reaches it. Null: <see cref="BaseUrl"/>, except that a loopback base URL
    /// becomes <c>host.hands.internal</c> at the same port (the local engine forwards the ports it is told to).
    /// </summary>
    public Uri? WorkerBaseUrl { get; init; }

    /// <summary>Sent as <c>Anthropic-Worker-ID</c> on polls, so <c>workers_polling</c> counts this orchestrator.</summary>
    public string WorkerId { get; init; } = $"hands-orchestrator-{Environment.MachineName}-{Environment.ProcessId}";

    /// <summary>Image of session sandboxes (<c>SANDBOX_IMAGE_NAME</c>); null: the provider's default.</summary>
    public string? Image { get; init; }

    /// <summary>
    /// <c>HANDS_SANDBOX_POOL</c>: the id of a warm pool (Tensorlake's <c>/sandbox-pools</c>) a session's new sandbox is
    /// claimed from, then named for its session; when the pool has no room, a sandbox is created as without a pool.
    /// The pool's image, resources and timeout then apply instead of <see cref="Image"/>, <see cref="Cpus"/>,
    /// <see cref="MemoryMb"/> and <see cref="SandboxTimeoutSeconds"/> (a claimed sandbox cannot be given others).
    /// Null: every sandbox is created.
    /// </summary>
    public string? SandboxPool { get; init; }

    /// <summary>CPUs of a session sandbox.</summary>
    public double Cpus { get; init; } = 1;

    /// <summary>Memory of a session sandbox.</summary>
    public int MemoryMb { get; init; } = 1024;

    /// <summary>
    /// Idle seconds before the provider suspends a session's sandbox (<c>SANDBOX_TIMEOUT_SECONDS</c>, default 3600);
    /// 0: never.
    /// </summary>
    public int SandboxTimeoutSeconds { get; init; } = 3600;

    /// <summary>The worker's path inside the sandbox (the local engine mounts it here).</summary>
    public string WorkerCommand { get; init; } = "/opt/hands/bin/hands-worker";

    /// <summary>The worker's workdir inside the sandbox.</summary>
    public string Workdir { get; init; } = "/workspace";

    /// <summary>How long a worker with nothing to do waits before it exits (<c>RUNNER_MAX_IDLE_SECONDS</c>).</summary>
    public TimeSpan WorkerMaxIdle { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary>
    /// <c>RESUME_SUSPENDED_SESSIONS</c>: false (default) replaces a session's suspended sandbox with a fresh one from
    /// the image; true resumes it with its files, processes and caches.
    /// </summary>
    public bool ResumeSuspendedSessions { get; init; }

    /// <summary>
    /// <c>HANDS_FORK_ACCESS</c>: whether a session's agent may fork its own sandbox. <c>None</c> (default); <c>Tool</c>:
    /// the worker gets a fork key scoped to that sandbox and serves the custom tool <c>fork_explore</c>; <c>Bash</c>:
    /// the key also reaches bash, so <c>hands-fork</c> works there. Needs the Hands engine (fork keys are its extension).
    /// </summary>
    public WorkerForkAccess ForkAccess { get; init; }

    /// <summary>
    /// <c>HANDS_WORKER_API_ROUTES=session</c>: a session's sandbox may send the Managed Agents API only the six requests
    /// its worker needs for its own session and work item (the minimal list of <c>reference/drift-2026-11.md</c>),
    /// enforced by the local engine at the host-port forward that carries the API (<c>host_port_routes</c>). Off by
    /// default: the sessions token is scoped to its session by the API already; this is defense in depth, and only the
    /// local engine can enforce it.
    /// </summary>
    public bool RestrictWorkerApiRoutes { get; init; }

    /// <summary>Most sessions being spun up at once (the reference orchestrator does one at a time).</summary>
    public int MaxConcurrentSpawns { get; init; } = 16;

    /// <summary>How long the orchestrator holds a lease for a worker that has not yet taken it over.</summary>
    public TimeSpan HandOffTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>How often the lease is renewed while it waits for the worker.</summary>
    public TimeSpan HandOffHeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>A session's spawn is tried this many times in one orchestrator before the item is left to lapse for good.</summary>
    public int MaxSpawnAttempts { get; init; } = 3;

    /// <summary>
    /// Where in-flight claims are recorded (<see cref="ClaimRecords"/>), so that the next orchestrator releases at start
    /// what this one claimed and did not hand over before it died. Null: beside the lock the orchestrator was given
    /// (<see cref="OrchestratorLock.ClaimsDirectory"/>), and without a lock nothing is recorded. Only the holder of the
    /// environment's orchestrator lock may use the directory.
    /// </summary>
    public string? ClaimsDirectory { get; init; }

    /// <summary>
    /// The longest start-up spends settling the claims a previous orchestrator left (checking sandboxes, releasing
    /// leases); whatever is not settled by then is kept for the next start and polling begins.
    /// </summary>
    public TimeSpan ClaimRecoveryTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// A recorded claim older than this is dropped at start without a call, because its lease has lapsed whatever
    /// happened and whoever holds the item now is not this orchestrator's: a claim is held at most while the session's
    /// sandbox starts (two waits of up to 2 minutes) and then for <see cref="HandOffTimeout"/>, and after the last
    /// renewal lapses within the server's default TTL (60 s in the local control plane, 90 s assumed by the reference's
    /// helpers). It also ends the retries of a claim whose release keeps failing: each start tries again until then.
    /// </summary>
    public TimeSpan ClaimRecordLifetime { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>
    /// Where workers send their traces over OTLP (<c>HANDS_WORKER_OTEL_EXPORTER_OTLP_ENDPOINT</c>), as a sandbox reaches
    /// the collector (a loopback address becomes <c>host.hands.internal</c>, which the local engine forwards only for
    /// its <c>--host-port</c>s); null: workers export nothing, though they still carry the orchestrator's trace context
    /// to the API. No collector header (where a collector's key goes) ever enters a sandbox.
    /// </summary>
    public Uri? WorkerOtlpEndpoint { get; init; }

    /// <summary>The workers' <c>OTEL_EXPORTER_OTLP_PROTOCOL</c> (<c>http/protobuf</c> or <c>grpc</c>); null: the exporter's default.</summary>
    public string? WorkerOtlpProtocol { get; init; }

    /// <summary>Where the orchestrator logs (never keys, secrets or tokens).</summary>
    public ILogger Logger { get; init; } = NullLogger.Instance;

    /// <summary>
    /// The clock the orchestrator's own waits run on (poll backoff, lease hand-off renewals and deadline). The Tensorlake
    /// client's waits run on its own options' clock.
    /// </summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>The URL handed to workers, with the loopback rule of <see cref="WorkerBaseUrl"/> applied.</summary>
    public Uri EffectiveWorkerBaseUrl => WorkerBaseUrl ?? WorkerUrls.FromHost(BaseUrl);
}

/// <summary>How far a session's agent may fork its own sandbox (see <see cref="OrchestratorOptions.ForkAccess"/>).</summary>
public enum WorkerForkAccess
{
    /// <summary>No fork key is issued.</summary>
    None,

    /// <summary>The worker holds a scoped fork key and serves <c>fork_explore</c>; bash never sees the key.</summary>
    Tool,

    /// <summary>As <see cref="Tool"/>, and bash's environment carries the key for <c>hands-fork</c>.</summary>
    Bash,
}
