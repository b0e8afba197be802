namespace Hands.Engine;

/// <summary>Settings of <c>hands engine</c>. Every path defaults to something under <see cref="DataDirectory"/> or next to the engine.</summary>
public sealed class EngineOptions
{
    /// <summary>Where state lives: the database, runc's state, layers, snapshots, sandbox roots and network namespaces.</summary>
    public string DataDirectory { get; set; } = "/var/lib/hands/engine";

    /// <summary>The lifecycle API (Tensorlake's local-mode paths), e.g. <c>http://127.0.0.1:8900</c>. Port 0 picks a free one.</summary>
    public Uri ApiUrl { get; set; } = new("http://127.0.0.1:8900");

    /// <summary>The ingress: the sandbox API by <c>Host: {id}.local</c> or <c>{id}.localhost</c>, user ports by <c>{port}-{id}.localhost</c>.</summary>
    public Uri IngressUrl { get; set; } = new("http://127.0.0.1:9443");

    /// <summary>The OCI runtime binary (runc or anything with its verbs).</summary>
    public string RuntimeBinary { get; set; } = "runc";

    /// <summary>CRIU >= 4.1 (a path or a wrapper); null looks for <c>/opt/hands/criu/criu</c>, then <c>criu</c> on PATH.</summary>
    public string? CriuBinary { get; set; }

    /// <summary>The in-sandbox daemon (NativeAOT <c>hands-sandboxd</c>); null looks in <c>HANDS_SANDBOXD_BINARY</c>, then next to the engine.</summary>
    public string? SandboxDaemonBinary { get; set; }

    /// <summary><c>hands-worker</c> mounted read-only at <c>/opt/hands/bin/hands-worker</c>; null looks in <c>HANDS_WORKER_BINARY</c>, then next to the engine.</summary>
    public string? WorkerBinary { get; set; }

    /// <summary>A static init for PID 1 that reaps orphans (Debian's tini-static).</summary>
    public string InitBinary { get; set; } = "/usr/bin/tini-static";

    /// <summary>
    /// Bearer key every request must carry (user ports excepted when a sandbox allows unauthenticated access). Null: the
    /// key in <c>{data}/api-key</c>, made on first start (<see cref="Api.EngineApiKeyFile"/>).
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>
    /// Weaker, explicit opt-in: with no <see cref="ApiKey"/>, serve every caller that can reach the API without a key
    /// (any local user can then create sandboxes). Off by default.
    /// </summary>
    public bool AllowAnonymous { get; set; }

    /// <summary>Image used when a create names none: <c>host</c> (the host's /usr read-only, instant) or <c>debian</c> (debootstrap minbase).</summary>
    public string DefaultImage { get; set; } = "host";

    /// <summary>How long a frozen (tier 1) sandbox stays in RAM before it is hibernated to disk with CRIU (tier 2).</summary>
    public TimeSpan HibernateAfter { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How often idle timers are checked.</summary>
    public TimeSpan IdleCheckInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The clock idle handling runs on (the idle pass's timer, inbound activity, hibernate-after, record times); tests pass a fake one.</summary>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// How often the network telemetry reads every live sandbox's connection-tracking table and policy counters
    /// (a read of a sandbox's telemetry also collects it first).
    /// </summary>
    public TimeSpan NetworkTelemetryInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Most sandboxes alive (running or suspended, warm pool sandboxes included) at once; creates beyond it get 429.</summary>
    public int MaxSandboxes { get; set; } = 256;

    /// <summary>
    /// The memory all warm (booted, unclaimed) pool sandboxes together may be given, counted as the sum of their
    /// <c>memory_mb</c> limits; refills stop there. Null: a quarter of the host's RAM. Counted on limits, not on what
    /// they use now (an idle one holds ~15 MB), because a pool's entrypoint may fill its limit while it waits, and the
    /// limit is the only bound the engine can promise; a quarter leaves the rest to the sandboxes sessions work in.
    /// </summary>
    public int? PoolMemoryMb { get; set; }

    /// <summary>How long the pool refill waits before booting again for a pool whose last warm sandbox failed to start; doubles per failure, up to 5 minutes.</summary>
    public TimeSpan PoolRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How many blank disks of the default size the engine keeps formatted ahead in the data volume
    /// (<see cref="Storage.BlankDisks"/>), so that a create or a fork child takes one instead of running mkfs on its
    /// boot path. 0: none. Each takes about 4 MB of the volume.
    /// </summary>
    public int BlankDisks { get; set; } = 8;

    /// <summary>
    /// How many network namespaces the engine keeps made ahead for memory forks (<see cref="Network.SpareNetworks"/>),
    /// so that a fork child takes one instead of running the network's processes before its CRIU restore. 0: none.
    /// Only with a working CRIU and without <see cref="UserNamespace"/> (memory forks are off otherwise); at most
    /// <see cref="MaxSpareNetworks"/>.
    /// </summary>
    public int SpareNetworks { get; set; } = 8;

    /// <summary>The most <see cref="SpareNetworks"/> an engine keeps: each reserves a slot (an address) and holds a namespace and a veth.</summary>
    public const int MaxSpareNetworks = 64;

    /// <summary>The apt mirror debootstrap builds the <c>debian</c> base from.</summary>
    public string DebianMirror { get; set; } = "http://deb.debian.org/debian";

    /// <summary>
    /// Host loopback ports sandboxes may reach as <c>host.hands.internal:PORT</c> (the engine listens on each
    /// sandbox's gateway and relays to <c>127.0.0.1:PORT</c>), e.g. the local control plane a worker reports to.
    /// Empty by default: nothing on the host is reachable from a sandbox unless named here.
    /// </summary>
    public IReadOnlyList<int> HostPorts { get; set; } = [];

    /// <summary>
    /// The argv of a process that serves the <see cref="HostPorts"/> forwards apart from the engine
    /// (<see cref="Network.HostPortForwarder"/>, <c>hands engine forwarder --data DIR</c>), so that workers keep reaching
    /// the host while the engine restarts or is upgraded; <c>hands engine</c> sets it. Null: the forwards live in the
    /// engine's own process and end with it (an engine embedded in a process that holds the control plane too, as
    /// <c>hands up</c> and <c>hands demo</c> do, gains nothing from a forwarder of its own).
    /// </summary>
    public IReadOnlyList<string>? HostPortForwarderCommand { get; set; }

    /// <summary>
    /// Size of the data volume (<c>{data}/volume.img</c>), which holds every sandbox's disk, snapshot and checkpoint and
    /// is allocated in full when made. Null: half the disk's free space at first start, at most 16 GiB. A larger value
    /// on a later start grows it; it never shrinks.
    /// </summary>
    public int? VolumeMb { get; set; }

    /// <summary>
    /// Stronger, explicit choice: run every sandbox in a user namespace, so that sandbox root is an unprivileged host id
    /// (<see cref="Runtime.SandboxIdentity"/>). Memory snapshots, hibernation and memory forks are then off (CRIU cannot
    /// restore such a sandbox into the engine's network namespace); freezing, filesystem snapshots and forks from them
    /// work. A data directory keeps the mode it was first started with.
    /// </summary>
    public bool UserNamespace { get; set; }

    /// <summary>Where built base images are cached across data directories (debootstrap takes a minute).</summary>
    public string ImageCacheDirectory { get; set; } = "/var/cache/hands/images";
}
