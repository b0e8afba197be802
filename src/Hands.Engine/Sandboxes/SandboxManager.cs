using System.Globalization;
using Hands.Engine.Hosting;
using Hands.Engine.Network;
using Hands.Engine.Runtime;
using Hands.Engine.Storage;
using Hands.Sandboxes.Concurrency;
using Hands.Sandboxes.Models;
using Hands.Engine.Telemetry;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// The sandbox lifecycle: create (from an image or a snapshot), update, delete, suspend and resume in two tiers,
/// snapshots, idle handling and recovery after a restart. Operations on one sandbox are serialized (a resume racing
/// a suspend sees the suspend's result); every state change is stored before it is answered.
/// </summary>
internal sealed partial class SandboxManager(EngineOptions options, EngineStore store, ImageStore images, DataVolume volume, SandboxIdentity identity, RuncRuntime runtime,
    EngineBinaries binaries, SandboxActivity activity, ILogger logger)
{
    /// <summary>How long a new or restored sandbox's daemon has to start listening.</summary>
    private static readonly TimeSpan BootTimeout = TimeSpan.FromSeconds(20);

    private readonly KeyedLock<string> _locks = new(StringComparer.Ordinal);
    // A slot with no live sandbox (a race with its deletion) gets an empty list: refused, never an open pipe.
    private readonly IHostPortForwarding _hostPorts = CreateHostPorts(options, store, activity, logger);
    private readonly SemaphoreSlim _allocation = new(1, 1);

    /// <summary>The slot handed out last (under <see cref="_allocation"/>); a new process starts from the live ones' highest.</summary>
    private int _lastSlot = store.LiveSandboxes().Select(s => s.Slot).DefaultIfEmpty(0).Max();

    public bool CriuAvailable => binaries.Criu is not null;

    /// <summary>The OCI runtime (readiness asks it to answer).</summary>
    internal RuncRuntime Runtime => runtime;

    /// <summary>The engine's clock (<see cref="EngineOptions.TimeProvider"/>).</summary>
    public TimeProvider Time => options.TimeProvider;

    public ImageStore Images => images;

    public DataVolume Volume => volume;

    /// <summary>Blank disks formatted ahead, which creates and forks take instead of running mkfs.</summary>
    public BlankDisks BlankDisks { get; } = new(volume, options.BlankDisks, logger, options.TimeProvider);

    /// <summary>Network namespaces made ahead, which memory forks take instead of making their own before CRIU restores them.</summary>
    public SpareNetworks SpareNetworks { get; } = new(Path.Combine(options.DataDirectory, "netns"),
        binaries.Criu is not null && !identity.UserNamespace ? Math.Clamp(options.SpareNetworks, 0, EngineOptions.MaxSpareNetworks) : 0,
        NetworkSlot.PrefixFor(options.DataDirectory), options.HostPorts, logger, options.TimeProvider);

    public string? CriuProblem => binaries.CriuProblem;

    public SandboxPaths PathsOf(string id) => new(options.DataDirectory, id);

    private readonly string _interfacePrefix = NetworkSlot.PrefixFor(options.DataDirectory);

    /// <summary>The sandbox's /30 and veth name.</summary>
    public NetworkSlot SlotOf(SandboxRecord record) => new(record.Slot, _interfacePrefix);

    /// <summary>Runs <paramref name="action"/> holding the sandbox's lock, on its record as stored once the lock is held.</summary>
    private async Task<T> LockedAsync<T>(string idOrName, string ns, Func<SandboxRecord, Task<T>> action, CancellationToken cancellationToken)
    {
        var id = Get(idOrName, ns).Id;
        using (await _locks.AcquireAsync(id, cancellationToken).ConfigureAwait(false))
        {
            return await action(Get(id, ns)).ConfigureAwait(false);
        }
    }

    private long Now => options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>A live sandbox by id or name, or a terminated one by id; 404 otherwise, and for a warm pool sandbox (it is no one's yet).</summary>
    public SandboxRecord Get(string idOrName, string ns)
    {
        if (store.Sandbox(idOrName) is { Warm: false } byId && byId.Namespace == ns)
        {
            return byId;
        }

        var named = store.SandboxesNamed(idOrName).Where(s => s.Namespace == ns).ToList();
        return named.LastOrDefault(s => s.IsAlive) ?? named.LastOrDefault()
            ?? throw new EngineException(404, $"sandbox '{idOrName}' not found");
    }

    /// <summary>A live sandbox by id in any namespace, or null; null for a warm pool sandbox too.</summary>
    public SandboxRecord? FindAlive(string id) => store.Sandbox(id) is { IsAlive: true, Warm: false } record ? record : null;

    /// <summary>Every live sandbox in every namespace, warm pool sandboxes included (what holds the host's resources).</summary>
    public IReadOnlyList<SandboxRecord> AllAlive() => store.LiveSandboxes();

    /// <summary>Every live sandbox the ingress may reach: warm pool sandboxes are no one's until claimed.</summary>
    public IReadOnlyList<SandboxRecord> AllReachable() => [.. store.LiveSandboxes().Where(s => !s.Warm)];

    public IReadOnlyList<SandboxRecord> List(string ns) => [.. store.Sandboxes().Where(s => s.Namespace == ns && !s.Warm)];

    /// <summary>Creates a sandbox (or restores one from <c>snapshot_id</c>) and answers once its daemon listens.</summary>
    /// <param name="request">The create request.</param>
    /// <param name="ns">The namespace.</param>
    /// <param name="cancellationToken">Cancels waiting for the allocation lock.</param>
    /// <param name="forkedBy">The sandbox whose fork key asks (the child then inherits that sandbox's limits).</param>
    /// <param name="pool">For a pool's sandbox: which pool, and whether it boots warm or for a claim (checked against the pool's limits with the engine's).</param>
    public async Task<SandboxRecord> CreateAsync(CreateSandboxRequest request, string ns, CancellationToken cancellationToken, string? forkedBy = null,
        PoolMembership? pool = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        // A sandbox made from a snapshot is a fork of the sandbox the snapshot was taken of (the fork-and-explore step).
        using var op = EngineOperation.Start(string.IsNullOrEmpty(request.SnapshotId) ? "create" : "fork");
        op.Span?.SetTag("hands.sandbox.name", request.Name);
        op.Span?.SetTag("hands.snapshot.id", request.SnapshotId);
        op.Span?.SetTag("hands.pool.id", pool?.PoolId);
        op.Span?.SetTag("hands.pool.warm", pool?.Warm);
        try
        {
            var record = await CreateCoreAsync(request, ns, cancellationToken, forkedBy, pool).ConfigureAwait(false);
            op.Span?.SetTag("hands.sandbox.id", record.Id);
            op.Succeed();
            return record;
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task<SandboxRecord> CreateCoreAsync(CreateSandboxRequest request, string ns, CancellationToken cancellationToken, string? forkedBy,
        PoolMembership? pool)
    {
        Validate(request);
        // A fork key names children under its own sandbox only, so an agent cannot take a name another component will use.
        if (forkedBy is not null && request.Name is { } childName && !childName.StartsWith(forkedBy + "-", StringComparison.Ordinal))
        {
            throw new EngineException(403, $"a fork key's children are named under their parent: start the name with '{forkedBy}-', or give none");
        }

        SnapshotRecord? snapshot = null;
        ResolvedImage image;
        if (!string.IsNullOrEmpty(request.SnapshotId))
        {
            snapshot = store.Snapshots().FirstOrDefault(s => s.Id == request.SnapshotId && s.Namespace == ns)
                ?? throw new EngineException(404, "Snapshot not found");
            if (snapshot.Status is not (SnapshotStatus.LocalReady or SnapshotStatus.Completed))
            {
                throw new EngineException(400, $"snapshot {snapshot.Id} is {snapshot.Status}; only a completed snapshot can be restored");
            }

            image = images.Resolve(snapshot.Image) with { Layers = snapshot.Layers, Env = snapshot.ImageEnv };
        }
        else
        {
            image = images.Resolve(request.Image);
        }

        if (snapshot?.DiskMb is { } snapshotDisk && request.Resources?.Disk is { } askedDisk && askedDisk < snapshotDisk)
        {
            throw new EngineException(400, $"resources.disk_mb may only grow a snapshot's disk: {askedDisk} is less than its {snapshotDisk}");
        }

        var isMemoryRestore = snapshot?.Type == SnapshotType.Memory;
        if (isMemoryRestore && !CriuAvailable)
        {
            throw new EngineException(400, $"snapshot {snapshot!.Id} is a memory snapshot and this engine has no working CRIU: {CriuProblem}");
        }

        volume.EnsureRoomFor("the sandbox was not created");
        SandboxRecord record;
        KeyedLock<string>.Releaser held;
        // Taken before the allocation, which the refill's own slot reservation waits for: from here to the boot's end
        // the refill starts no spare beside this sandbox.
        using var quietNetworks = SpareNetworks.HoldRefill();
        var tookSpare = false;
        var spareSlot = 0;
        await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var alive = store.LiveSandboxes();
            if (request.Name is { } name && alive.Any(s => s.Namespace == ns && (s.Name == name || s.Id == name)))
            {
                throw new EngineException(409, $"a sandbox named '{name}' already exists; pick another name or delete it first");
            }

            if (alive.Count >= options.MaxSandboxes)
            {
                throw new EngineException(429, $"the engine is at capacity ({options.MaxSandboxes} live sandboxes); delete some or start the engine with a higher --max-sandboxes");
            }

            if (pool is not null)
            {
                // Here, where every create is serialized and the store is the truth: a pool's count cannot overshoot.
                EnsurePoolRoom(pool, ns, alive, request.Resources?.MemoryMb ?? 1024);
            }

            record = new SandboxRecord
            {
                Id = SandboxIds.NewId(),
                Name = request.Name,
                Namespace = ns,
                Status = SandboxStatus.Pending,
                Image = image.Name,
                Layers = [.. image.Layers],
                Cpus = isMemoryRestore ? snapshot!.Cpus : request.Resources?.Cpus ?? snapshot?.Cpus ?? 1.0,
                MemoryMb = isMemoryRestore ? snapshot!.MemoryMb : request.Resources?.MemoryMb ?? snapshot?.MemoryMb ?? 1024,
                DiskMb = request.Resources?.Disk ?? snapshot?.DiskMb ?? SandboxDisk.DefaultMb,
                // A fork key's children live no longer than their parent may idle.
                TimeoutSecs = forkedBy is not null ? store.Sandbox(forkedBy)?.TimeoutSecs ?? 600 : request.TimeoutSecs ?? 600,
                Entrypoint = isMemoryRestore ? null : request.Entrypoint ?? snapshot?.Entrypoint,
                // A fork keeps its parent's egress policy unless the request names one, and always its API allow-list.
                Network = request.Network ?? (snapshot is null ? null : store.Sandbox(snapshot.SandboxId)?.Network),
                HostPortRoutes = (snapshot is null ? null : store.Sandbox(snapshot.SandboxId)?.HostPortRoutes)
                    ?? (forkedBy is null ? null : store.Sandbox(forkedBy)?.HostPortRoutes),
                ParentId = snapshot?.SandboxId,
                ForkedBy = forkedBy,
                ExposedPorts = NormalizePorts(request.ExposedPorts ?? snapshot?.ExposedPorts ?? []),
                AllowUnauthenticatedAccess = request.AllowUnauthenticatedAccess ?? snapshot?.AllowUnauthenticatedAccess ?? false,
                // A fork takes a spare network's slot (made ahead, below); the rotation of new slots is not moved back.
                Slot = isMemoryRestore && (tookSpare = SpareNetworks.TryTake(out spareSlot))
                    ? spareSlot
                    : (_lastSlot = NetworkSlot.Allocate(alive.Select(s => s.Slot).Concat(SpareNetworks.ReservedSlots), _lastSlot).Index),
                ImageEnv = new Dictionary<string, string>(image.Env),
                RestoredFromSnapshot = snapshot?.Id,
                CreatedAt = Now,
                DaemonToken = isMemoryRestore ? snapshot!.DaemonToken ?? "" : SandboxDaemonClient.NewToken(),
                PoolId = pool?.PoolId,
                Warm = pool?.Warm ?? false,
                PoolGeneration = pool?.Generation,
                ClaimedAt = pool is { Warm: false } ? Now : null,
            };
            // Held before the record is visible: a DELETE by name must not tear down a sandbox that is still booting
            // (it waits for the boot, then deletes what booted). A new id's lock is free, so this never waits.
            held = await _locks.AcquireAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            store.Save(record);
        }
        catch when (tookSpare)
        {
            // The record that would have owned it was never saved: its slot is nobody's again, and so is the spare.
            await SpareNetworks.DestroyAsync(spareSlot).ConfigureAwait(false);
            throw;
        }
        finally
        {
            _allocation.Release();
        }

        using var boot = held;
        try
        {
            var phases = new BootPhases(options.TimeProvider);
            using var quiet = BlankDisks.HoldRefill();
            await BootAsync(record, image, isMemoryRestore ? snapshot!.CheckpointDirectory : null, CancellationToken.None, phases, tookSpare).ConfigureAwait(false);
            CrashPoints.Reach(CrashPoints.CreateBooted);
            SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
            store.Save(record);
            activity.Touch(record.Id);
            logger.LogInformation("sandbox {Id} running ({Image}{From}) at {Address}; boot {Phases}", record.Id, record.Image,
                snapshot is not null ? $", from {snapshot.Type} snapshot {snapshot.Id}"
                    : pool is null ? "" : pool.Warm ? $", warm in pool {pool.PoolId}" : $", claimed from pool {pool.PoolId}",
                SlotOf(record).SandboxAddress, phases);
            return record;
        }
        catch (Exception ex) when (ex is EngineCommandException or EngineException or IOException or TimeoutException)
        {
            await TearDownAsync(record, CancellationToken.None).ConfigureAwait(false);
            SandboxLifecycle.MoveTo(record, SandboxState.Terminated, Now, "StartupFailed");
            record.ErrorDetails = ex.Message;
            store.Save(record);
            logger.LogWarning("sandbox {Id} failed to start: {Error}", record.Id, ex.Message);
            throw ex as EngineException ?? new EngineException(500, $"the sandbox could not be started: {ex.Message}", ex);
        }
    }

    /// <summary>Mounts the root, makes the network, writes the bundle and starts (or restores) the container.</summary>
    private async Task BootAsync(SandboxRecord record, ResolvedImage image, string? checkpoint, CancellationToken cancellationToken, BootPhases? phases = null, bool spareNetwork = false)
    {
        phases ??= new BootPhases(options.TimeProvider);
        var paths = PathsOf(record.Id);
        var slot = SlotOf(record);
        // A memory fork boots disconnected: the processes it must not inherit are killed before a byte can leave.
        var quarantine = checkpoint is not null;
        // The root (disk image, loop mount, overlay) and the network (namespace, veth, rules) share nothing and both
        // mostly wait on child processes, so they are made at the same time. Both are awaited before anything fails
        // out, so a failure tears down whatever either one made.
        var root = phases.TimeAsync(async () =>
        {
            await MountRootAsync(record, paths, cancellationToken).ConfigureAwait(false);
            if (checkpoint is null)
            {
                var tokenFile = SandboxDaemonClient.WriteTokenFile(paths.RootFs, record.DaemonToken);
                // The daemon, as sandbox root, reads and deletes it: both the file and its directory are sandbox root's.
                identity.Own(Path.GetDirectoryName(tokenFile)!);
                identity.Own(tokenFile);
            }
        });
        // A new container needs only the namespace to start in: its veth, addresses and rules are made while runc
        // starts it (nothing of the sandbox's own runs before the boot ends, and the host end comes up after the
        // rules). A restore needs them all before CRIU binds the sockets it brings back.
        var network = phases.TimeAsync(() => checkpoint is null
            ? SandboxNetwork.CreateNamespaceAsync(paths.NetworkNamespace, slot, cancellationToken)
            : spareNetwork
                ? AdoptSpareNetworkAsync(record, cancellationToken)
                : CreateNetworkAsync(record, cancellationToken, connect: !quarantine));
        await AllOfAsync(root, network).ConfigureAwait(false);
        phases.MarkConcurrent(("root", await root.ConfigureAwait(false)), (checkpoint is null ? "namespace" : "network", await network.ConfigureAwait(false)));
        WriteHostsFile(paths, slot);
        WriteBundle(record, image.Binds, checkpoint is not null);
        SandboxCgroups.EnsureMemoryDirectory(record.Id);
        if (checkpoint is null)
        {
            var run = phases.TimeAsync(() => runtime.RunAsync(record.Id, paths.Bundle, paths.RuncLog, cancellationToken));
            var configure = phases.TimeAsync(() => ConfigureNetworkAsync(record, cancellationToken));
            await AllOfAsync(run, configure).ConfigureAwait(false);
            phases.MarkConcurrent(("runc run", await run.ConfigureAwait(false)), ("network", await configure.ConfigureAwait(false)));
        }
        else
        {
            await runtime.RestoreAsync(record.Id, paths.Bundle, checkpoint, paths.CriuWork, paths.RuncLog, cancellationToken).ConfigureAwait(false);
            phases.Mark("criu restore");
            CrashPoints.Reach(CrashPoints.ForkRestored);
            // Frozen while marked processes are found and killed, so none can fork an unseen child in between.
            IReadOnlyList<int> killed;
            await runtime.PauseAsync(record.Id, cancellationToken).ConfigureAwait(false);
            try
            {
                killed = ForkQuarantine.KillMarked(record.Id);
            }
            finally
            {
                await runtime.ResumeAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
            }

            await ForkQuarantine.WaitUntilDeadAsync(killed, cancellationToken).ConfigureAwait(false);
            if (killed.Count > 0)
            {
                logger.LogInformation("fork {Id}: killed {Count} process(es) marked {Marker} (pids {Pids})", record.Id, killed.Count,
                    ForkQuarantine.Variable, string.Join(',', killed));
            }

            phases.Mark("quarantine");
            await SandboxNetwork.ConnectAsync(slot, cancellationToken).ConfigureAwait(false);
            phases.Mark("connect");
        }

        if (!await SandboxDaemonClient.WaitForPortAsync(slot.SandboxAddress, SandboxDaemonClient.Port, BootTimeout, cancellationToken).ConfigureAwait(false))
        {
            throw new TimeoutException($"the sandbox daemon did not start listening within {BootTimeout.TotalSeconds:0} s");
        }

        phases.Mark("daemon listening");

        if (record.Entrypoint is { Count: > 0 } entrypoint)
        {
            await SandboxDaemonClient.StartEntrypointAsync(slot.SandboxAddress, record.DaemonToken, entrypoint, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Waits for every one of <paramref name="tasks"/> (none is left running behind a failure) and rethrows the first
    /// failure as itself, not wrapped, so callers' exception filters see what they see from one step.
    /// </summary>
    private static async Task AllOfAsync(params Task[] tasks)
    {
        try
        {
            await Task.WhenAll(tasks).ConfigureAwait(false);
        }
        catch (Exception) when (tasks.FirstOrDefault(t => t.IsFaulted) is { Exception.InnerException: { } first })
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }
    }

    /// <summary>Mounts the sandbox's disk (made on first boot) and its overlay root on it, whichever is not mounted.</summary>
    private async Task MountRootAsync(SandboxRecord record, SandboxPaths paths, CancellationToken cancellationToken)
    {
        await SandboxDisk.EnsureMountedAsync(paths.DiskImage, paths.Disk, record.DiskMb ?? SandboxDisk.DefaultMb, BlankDisks, cancellationToken).ConfigureAwait(false);
        Directory.CreateDirectory(paths.Upper);
        // The upper directory's owner is the owner of the sandbox's "/".
        identity.Own(paths.Upper);
        Directory.CreateDirectory(paths.Work);
        Directory.CreateDirectory(paths.RootFs);
        if (Native.MountsUnder(paths.RootFs).Count == 0)
        {
            Native.MountOverlay(paths.RootFs, record.Layers, paths.Upper, paths.Work);
        }
    }

    private void WriteBundle(SandboxRecord record, IReadOnlyList<BindMount> imageBinds, bool forkRestore)
    {
        var paths = PathsOf(record.Id);
        List<BindMount> binds =
        [
            .. imageBinds,
            new(binaries.Init, "/opt/hands/bin/tini"),
            new(binaries.SandboxDaemon, "/opt/hands/bin/hands-sandboxd"),
            new(paths.HostsFile, "/etc/hosts"),
        ];
        if (SandboxCgroups.MemoryDirectory(record.Id) is { } memory)
        {
            // Read-only (a sandbox must not raise its own limit): the daemon and the worker read its OOM-kill counter
            // to tell a process killed for memory from one killed by a signal; programs read their limit there too.
            binds.Add(new BindMount(memory, Hands.Common.SandboxMemoryCgroup.MountPoint));
        }

        if (binaries.Worker is not null)
        {
            binds.Add(new BindMount(binaries.Worker, "/opt/hands/bin/hands-worker"));
            // The same binary under this name is the in-sandbox fork helper (it checks how it was called).
            binds.Add(new BindMount(binaries.Worker, "/opt/hands/bin/hands-fork"));
        }

        var env = new Dictionary<string, string>
        {
            ["PATH"] = "/opt/hands/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            ["HOME"] = "/root",
            ["LANG"] = "C.UTF-8",
            ["TERM"] = "xterm",
            ["HOSTNAME"] = record.Id,
            ["TENSORLAKE_SANDBOX_ID"] = record.Id,
            // .NET's diagnostics IPC is a listening unix socket CRIU cannot dump; off for every .NET program in here.
            ["DOTNET_EnableDiagnostics"] = "0",
        };
        foreach (var (key, value) in record.ImageEnv)
        {
            env[key] = value;
        }

        File.WriteAllText(paths.CriuConfig, StandardCriuConfig);
        var criuConfig = paths.CriuConfig;
        if (forkRestore)
        {
            // A fork must not inherit the parent's connections: CRIU restores them closed and their owners reconnect.
            // No network lock either: a fork boots with the host end of its veth down (quarantine, BootAsync), so
            // nothing reaches it until it is connected, and CRIU's iptables lock and unlock (an iptables-restore run
            // each, in the fork's namespace) only cost CPU that parallel forks on a 2-core host wait for.
            File.WriteAllText(paths.ForkCriuConfig, "tcp-close\nnetwork-lock skip\n");
            criuConfig = paths.ForkCriuConfig;
        }

        BundleWriter.Write(paths.Bundle, new BundleSpec(
            RootFs: paths.RootFs,
            Hostname: record.Id,
            NetworkNamespacePath: paths.NetworkNamespace,
            CgroupsPath: $"/hands/{record.Id}",
            Cpus: record.Cpus,
            MemoryMb: record.MemoryMb,
            Args: ["/opt/hands/bin/tini", "--", "/opt/hands/bin/hands-sandboxd", "--token-file", SandboxDaemonClient.TokenFileInSandbox],
            Env: [.. env.Select(kv => $"{kv.Key}={kv.Value}")],
            Binds: binds,
            CriuConfigPath: criuConfig,
            UserNamespace: identity.UserNamespace));
    }

    /// <summary>Engine shutdown: the sandboxes keep running, and so does a forwarder process while any is alive.</summary>
    public async Task StopHostPortsAsync()
    {
        await _hostPorts.StopAsync(AllAlive().Count).ConfigureAwait(false);
        await _hostPorts.DisposeAsync().ConfigureAwait(false);
    }

    private static IHostPortForwarding CreateHostPorts(EngineOptions options, EngineStore store, SandboxActivity activity, ILogger logger)
    {
        IReadOnlyCollection<string>? RoutesOf(int slot, int port) =>
            store.LiveSandboxes().FirstOrDefault(s => s.Slot == slot) is { } owner
                ? owner.HostPortRoutes?.GetValueOrDefault(port.ToString(CultureInfo.InvariantCulture))
                : [];

        // Also with no --host-port when a forwarder a previous engine started still runs: this engine adopts it, closes
        // its forwards and, stopping with no sandbox left, ends it (an engine restarted without its ports, or
        // 'hands engine teardown', would otherwise leave it serving stale forwards for ever).
        return options.HostPortForwarderCommand is { Count: > 0 } command && (options.HostPorts.Count > 0 || File.Exists(new ForwarderPaths(options.DataDirectory).PidFile))
            ? new DetachedHostPortForwards(command, options.DataDirectory, options.HostPorts, RoutesOf, options.TimeProvider, logger)
            : new HostPortForwards(options.HostPorts, RoutesOf, slot => store.LiveSandboxes().FirstOrDefault(s => s.Slot == slot) is { } owner ? activity.Open(owner.Id) : null, logger);
    }

    /// <summary>Makes the sandbox's network namespace, configures it and opens its host forwards.</summary>
    private async Task CreateNetworkAsync(SandboxRecord record, CancellationToken cancellationToken, bool connect = true)
    {
        await SandboxNetwork.CreateNamespaceAsync(PathsOf(record.Id).NetworkNamespace, SlotOf(record), cancellationToken).ConfigureAwait(false);
        await ConfigureNetworkAsync(record, cancellationToken, connect).ConfigureAwait(false);
    }

    /// <summary>
    /// Moves the spare network a fork took with its slot to the fork's own name (a bind mount, then the spare's is
    /// unmounted), applies the fork's egress policy when it is not the default the spare was made with, and opens the
    /// host forwards: the network <see cref="CreateNetworkAsync"/> would have made, with the host end of the veth down.
    /// On failure the spare's mount goes too; the fork's own is the boot's to tear down.
    /// </summary>
    private async Task AdoptSpareNetworkAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        CrashPoints.Reach(CrashPoints.ForkSpareTaken);
        var spare = SpareNetworks.FileOf(record.Slot);
        var own = PathsOf(record.Id).NetworkNamespace;
        try
        {
            Directory.CreateDirectory(Path.GetDirectoryName(own)!);
            await File.WriteAllBytesAsync(own, [], cancellationToken).ConfigureAwait(false);
            Native.BindMount(spare, own);
            Native.TryUnmount(spare);
            File.Delete(spare);
            if (record.Network is not null)
            {
                await SandboxNetwork.ApplyPolicyAsync(own, SlotOf(record), record.Network, _hostPorts.Ports, cancellationToken).ConfigureAwait(false);
            }

            await _hostPorts.OpenAsync(SlotOf(record), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Native.TryUnmount(spare);
            File.Delete(spare);
            throw;
        }
    }

    /// <summary>
    /// The refill of <see cref="SpareNetworks"/>, until <paramref name="cancellationToken"/>: each spare's slot is
    /// allocated like a sandbox's, under the same lock, and reserved before the lock is let go.
    /// </summary>
    public Task RunSpareNetworksAsync(CancellationToken cancellationToken) => SpareNetworks.RunAsync(async ct =>
    {
        await _allocation.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // A create that began while this waited for the lock holds the refill from before its allocation.
            if (SpareNetworks.Held)
            {
                return null;
            }

            var slot = _lastSlot = NetworkSlot.Allocate(store.LiveSandboxes().Select(s => s.Slot).Concat(SpareNetworks.ReservedSlots), _lastSlot).Index;
            SpareNetworks.Reserve(slot);
            return (int?)slot;
        }
        finally
        {
            _allocation.Release();
        }
    }, cancellationToken);

    /// <summary>Configures the namespace <see cref="SandboxNetwork.CreateNamespaceAsync"/> made and opens the host forwards.</summary>
    private async Task ConfigureNetworkAsync(SandboxRecord record, CancellationToken cancellationToken, bool connect = true)
    {
        var slot = SlotOf(record);
        await SandboxNetwork.ConfigureAsync(PathsOf(record.Id).NetworkNamespace, slot, record.Network, _hostPorts.Ports, cancellationToken, connect).ConfigureAwait(false);
        await _hostPorts.OpenAsync(slot, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The CRIU configuration a sandbox's bundle names (<c>org.criu.config</c>), read by every dump of it: no CRIU
    /// network lock, because every dump takes the sandbox's veth down instead (<see cref="UseLinkAsNetworkLockAsync"/>).
    /// A restore takes the method its image records, so images an older engine dumped with CRIU's nftables or iptables
    /// lock are restored with it and still release it.
    /// </summary>
    private const string StandardCriuConfig = "network-lock skip\n";

    /// <summary>
    /// Per sandbox, bound over <c>/etc/hosts</c> (not in the upper, so a fork gets its own): <c>localhost</c> and the
    /// name of the host's forwarded ports, which is this sandbox's gateway.
    /// </summary>
    private static void WriteHostsFile(SandboxPaths paths, NetworkSlot slot) =>
        File.WriteAllText(paths.HostsFile, $"127.0.0.1 localhost\n{slot.HostAddress} {HostPortForwards.HostName}\n");

    /// <summary>Stops the container and removes its mounts, network and files; never throws (used on every failure path).</summary>
    private async Task TearDownAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        var paths = PathsOf(record.Id);
        try
        {
            await runtime.DeleteAsync(record.Id, cancellationToken).ConfigureAwait(false);
        }
        catch (EngineCommandException ex)
        {
            logger.LogWarning("runc delete {Id}: {Error}", record.Id, ex.Message);
        }

        foreach (var mount in Native.MountsUnder(paths.Root))
        {
            Native.TryUnmount(mount);
        }

        if (record.Slot > 0)
        {
            await CollectNetworkBeforeTearDownAsync(record).ConfigureAwait(false);
            await _hostPorts.CloseAsync(SlotOf(record)).ConfigureAwait(false);
            await SandboxNetwork.DestroyAsync(paths.NetworkNamespace, SlotOf(record), cancellationToken).ConfigureAwait(false);
            await EndNetworkCaptureAsync(record).ConfigureAwait(false);
        }

        RemoveCgroups(record.Id);
        try
        {
            if (Directory.Exists(paths.Root))
            {
                Directory.Delete(paths.Root, recursive: true);
            }
        }
        catch (IOException ex)
        {
            logger.LogWarning("removing {Path}: {Error}", paths.Root, ex.Message);
        }

        activity.Forget(record.Id);
        _hibernationRetryAt.TryRemove(record.Id, out _);
        // Its disk's room is back: a stock of blank disks that a full volume left short refills.
        BlankDisks.Wake();
    }

    /// <summary>runc removes its cgroups on delete; after a crash mid-create some can be left, empty.</summary>
    private static void RemoveCgroups(string id)
    {
        foreach (var dir in SandboxCgroups.Directories(id).Where(Directory.Exists))
        {
            try
            {
                Directory.Delete(dir);
            }
            catch (IOException)
            {
                // Still has tasks; runc delete -f handles those.
            }
        }
    }

    /// <summary>Terminates a sandbox; terminating a terminated one succeeds (idempotent, as Tensorlake's DELETE).</summary>
    public async Task<SandboxRecord> DeleteAsync(string idOrName, string ns, string reason, CancellationToken cancellationToken)
    {
        return await LockedAsync(idOrName, ns, async record =>
        {
            if (!record.IsAlive)
            {
                return record;
            }

            await TearDownAsync(record, CancellationToken.None).ConfigureAwait(false);
            CrashPoints.Reach(CrashPoints.DeleteTornDown);
            SandboxLifecycle.MoveTo(record, SandboxState.Terminated, Now, reason);
            store.Save(record);
            logger.LogInformation("sandbox {Id} terminated ({Reason})", record.Id, reason);
            // A claimed sandbox gone frees a place in its pool; any sandbox gone may free one under --max-sandboxes.
            SignalPools();
            return record;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>PATCH: name, port allowlist, unauthenticated access, and the egress policy (tri-state).</summary>
    public async Task<SandboxRecord> UpdateAsync(string idOrName, string ns, SandboxPatch patch, CancellationToken cancellationToken)
    {
        return await LockedAsync(idOrName, ns, async record =>
        {
            if (!record.IsAlive)
            {
                throw new EngineException(400, $"sandbox {record.Id} is terminated; it cannot be changed");
            }

            var routesChanged = false;

            if (patch.Name is { } name && name != record.Name)
            {
                if (!SandboxIds.IsValidName(name))
                {
                    throw new EngineException(400, $"name '{name}' is not valid: {SandboxIds.NameRuleText}");
                }

                if (store.LiveSandboxes().Any(s => s.Namespace == ns && s.Id != record.Id && (s.Name == name || s.Id == name)))
                {
                    throw new EngineException(409, $"a sandbox named '{name}' already exists");
                }

                record.Name = name;
            }

            if (patch.ExposedPorts is { } ports)
            {
                ValidatePorts(ports);
                record.ExposedPorts = NormalizePorts(ports);
            }

            if (patch.AllowUnauthenticatedAccess is { } allow)
            {
                record.AllowUnauthenticatedAccess = allow;
            }

            if (patch.HostPortRoutesSet)
            {
                foreach (var (port, routes) in patch.HostPortRoutes ?? [])
                {
                    if (!int.TryParse(port, CultureInfo.InvariantCulture, out var number) || !_hostPorts.Ports.Contains(number))
                    {
                        throw new EngineException(400, $"host_port_routes: {port} is not a host port this engine forwards ({string.Join(", ", _hostPorts.Ports)})");
                    }

                    if (routes.FirstOrDefault(r => !HttpRouteGate.IsValidRoute(r)) is { } bad)
                    {
                        throw new EngineException(400, $"host_port_routes: '{bad}' is not 'METHOD /path' (GET, POST, PUT, PATCH, DELETE or HEAD; a plain path: no %, .., // or query)");
                    }
                }

                record.HostPortRoutes = patch.HostPortRoutes;
                routesChanged = true;
            }

            if (patch.NetworkSet)
            {
                var paths = PathsOf(record.Id);
                // Applying the rules starts their counters from 0: count what the old policy refused first.
                await CollectNetworkAsync(record, cancellationToken).ConfigureAwait(false);
                await SandboxNetwork.ApplyPolicyAsync(paths.NetworkNamespace, SlotOf(record), patch.Network, _hostPorts.Ports, cancellationToken).ConfigureAwait(false);
                record.Network = patch.Network;
            }

            store.Save(record);
            if (routesChanged && record.Slot > 0)
            {
                // Answered only once the forwards apply it: the caller may start a worker that relies on the new list next.
                await _hostPorts.RoutesChangedAsync(cancellationToken).ConfigureAwait(false);
            }

            return record;
        }, cancellationToken).ConfigureAwait(false);
    }

    private static void Validate(CreateSandboxRequest request)
    {
        if (request.Name is { } name && !SandboxIds.IsValidName(name))
        {
            throw new EngineException(400, $"name '{name}' is not valid: {SandboxIds.NameRuleText}");
        }

        ValidatePorts(request.ExposedPorts ?? []);
        if (request.Resources?.Cpus is { } cpus && (cpus <= 0 || cpus > Environment.ProcessorCount * 4))
        {
            throw new EngineException(400, $"resources.cpus must be above 0 and at most {Environment.ProcessorCount * 4} on this host, not {cpus.ToString(CultureInfo.InvariantCulture)}");
        }

        if (request.Resources?.MemoryMb is { } memory && memory < 64)
        {
            throw new EngineException(400, $"resources.memory_mb must be at least 64, not {memory}");
        }

        if (request.Resources?.MemoryMb is { } asked && asked > HostMemoryMb)
        {
            throw new EngineException(400, $"resources.memory_mb is {asked}, more than this host has ({HostMemoryMb} MiB)");
        }

        if (request.Resources?.Disk is { } disk && disk is < SandboxDisk.MinimumMb or > SandboxDisk.MaximumMb)
        {
            throw new EngineException(400, $"resources.disk_mb must be {SandboxDisk.MinimumMb}-{SandboxDisk.MaximumMb}, not {disk}");
        }

        if (request.TimeoutSecs is < 0)
        {
            throw new EngineException(400, "timeout_secs must be 0 (no idle timeout) or more");
        }

        if (request.Entrypoint is { Count: 0 })
        {
            throw new EngineException(400, "entrypoint, when given, needs at least the program to run");
        }
    }

    /// <summary>The host's RAM (MemTotal), the ceiling for a sandbox's memory_mb.</summary>
    private static long HostMemoryMb => File.ReadLines("/proc/meminfo").Where(l => l.StartsWith("MemTotal:", StringComparison.Ordinal))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024).FirstOrDefault(long.MaxValue);

    private static void ValidatePorts(IEnumerable<int> ports)
    {
        foreach (var port in ports)
        {
            if (port is < 1 or > 65535)
            {
                throw new EngineException(400, $"exposed port {port} is out of range; ports are 1-65535");
            }

            if (port == SandboxDaemonClient.Port)
            {
                throw new EngineException(400, "port 9501 is the sandbox API's own port; it is always reachable (with the API key) and cannot be exposed");
            }
        }
    }

    private static List<int> NormalizePorts(IEnumerable<int> ports) => [.. ports.Distinct().Order()];
}

/// <summary>A parsed PATCH body; <see cref="NetworkSet"/> tells "network": null (clear) from an absent key (keep).</summary>
internal sealed record SandboxPatch(string? Name, bool? AllowUnauthenticatedAccess, List<int>? ExposedPorts, bool NetworkSet, NetworkPolicy? Network,
    bool HostPortRoutesSet = false, Dictionary<string, List<string>>? HostPortRoutes = null);
