using Hands.Engine.Hosting;
using Hands.Engine.Network;
using Hands.Engine.Storage;
using Hands.Engine.Telemetry;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

internal sealed partial class SandboxManager
{
    private string LayersDirectory => Path.Combine(volume.MountPoint, "layers");

    private string CheckpointsDirectory => Path.Combine(volume.MountPoint, "checkpoints");

    /// <summary>
    /// Snapshots a running sandbox. It is frozen for the capture, so files and memory agree: its upper layer is copied
    /// into a new read-only layer (both types) and, for <c>memory</c>, CRIU dumps it with <c>--leave-running</c>.
    /// It then runs on. A failure (a full disk, a CRIU error) removes every partial file and records nothing.
    /// </summary>
    public async Task<SnapshotRecord> SnapshotAsync(string idOrName, string ns, string type, CancellationToken cancellationToken)
    {
        using var op = EngineOperation.Start("snapshot");
        op.Span?.SetTag("hands.sandbox.id", idOrName);
        op.Span?.SetTag("hands.snapshot.type", type);
        try
        {
            var snapshot = await SnapshotCoreAsync(idOrName, ns, type, cancellationToken).ConfigureAwait(false);
            op.Span?.SetTag("hands.snapshot.id", snapshot.Id);
            op.Succeed();
            return snapshot;
        }
        catch (Exception ex) when (op.Failed(ex))
        {
            throw;
        }
    }

    private async Task<SnapshotRecord> SnapshotCoreAsync(string idOrName, string ns, string type, CancellationToken cancellationToken)
    {
        if (type is not (SnapshotType.Filesystem or SnapshotType.Memory))
        {
            throw new EngineException(400, $"snapshot_type must be 'filesystem' or 'memory', not '{type}'");
        }

        if (type == SnapshotType.Memory && !CriuAvailable)
        {
            throw new EngineException(400, $"memory snapshots need CRIU: {CriuProblem}; a 'filesystem' snapshot works without it");
        }

        return await LockedAsync(idOrName, ns, async record =>
        {
            if (record.Status != SandboxStatus.Running)
            {
                throw new EngineException(400, record.Status == SandboxStatus.Suspended
                    ? $"sandbox {record.Id} is suspended; resume it first (POST .../resume), then snapshot it"
                    : $"sandbox {record.Id} is {record.Status}; only a running sandbox can be snapshotted");
            }

            var snapshot = new SnapshotRecord
            {
                Id = SandboxIds.NewId('n'),
                Namespace = ns,
                SandboxId = record.Id,
                Type = type,
                Image = record.Image,
                Cpus = record.Cpus,
                MemoryMb = record.MemoryMb,
                DiskMb = record.DiskMb,
                Entrypoint = record.Entrypoint,
                ImageEnv = new Dictionary<string, string>(record.ImageEnv),
                ExposedPorts = [.. record.ExposedPorts],
                AllowUnauthenticatedAccess = record.AllowUnauthenticatedAccess,
                CreatedAt = Now,
            };
            var layer = Path.Combine(LayersDirectory, snapshot.Id);
            var partialLayer = layer + ".partial";
            var checkpoint = Path.Combine(CheckpointsDirectory, snapshot.Id);
            var paths = PathsOf(record.Id);
            // The layer is a full copy of what the sandbox wrote (cp crosses filesystems): refuse early what cannot fit,
            // keeping the volume's low-water mark free as creates do.
            var written = DirectorySize(paths.Upper);
            if (written + volume.LowWaterBytes > volume.FreeBytes)
            {
                throw DidNotFit($"{volume.FreeBytes >> 20} MiB free; sandbox {record.Id} has written {written >> 20} MiB", null);
            }

            SandboxLifecycle.MoveTo(record, SandboxState.Snapshotting, Now);
            store.Save(record);
            var paused = false;
            var disconnected = false;
            // What was being written when a write failed: the error names it.
            var writing = "the copy of the sandbox's files";
            try
            {
                if (type == SnapshotType.Memory)
                {
                    await SandboxDaemonClient.ScrubAsync(SlotOf(record).SandboxAddress, record.DaemonToken, cancellationToken).ConfigureAwait(false);
                }

                await runtime.PauseAsync(record.Id, cancellationToken).ConfigureAwait(false);
                paused = true;
                Directory.CreateDirectory(partialLayer);
                // cp -a keeps owners, modes, xattrs and overlay whiteouts (character devices 0/0); reflinks where the disk can.
                await CommandRunner.RunCheckedAsync("cp", ["-a", "--reflink=auto", paths.Upper + "/.", partialLayer], cancellationToken: cancellationToken).ConfigureAwait(false);
                if (type == SnapshotType.Memory)
                {
                    writing = "CRIU's memory image";
                    // The veth's host end is the network lock while CRIU dumps, as in a hibernation (UseLinkAsNetworkLockAsync).
                    disconnected = true;
                    await UseLinkAsNetworkLockAsync(record).ConfigureAwait(false);
                    await runtime.CheckpointAsync(record.Id, checkpoint, Path.Combine(checkpoint + ".work"), leaveRunning: true, CancellationToken.None).ConfigureAwait(false);
                    snapshot.CheckpointDirectory = checkpoint;
                    snapshot.DaemonToken = record.DaemonToken;
                }

                Directory.Move(partialLayer, layer);
                CrashPoints.Reach(CrashPoints.SnapshotLayerMoved);
                snapshot.Layers = [layer, .. record.Layers];
                snapshot.SizeBytes = DirectorySize(layer) + (snapshot.CheckpointDirectory is null ? 0 : DirectorySize(checkpoint));
                snapshot.Status = SnapshotStatus.LocalReady;
                store.Save(snapshot);
                logger.LogInformation("{Type} snapshot {Snapshot} of sandbox {Id} ({Size} bytes)", type, snapshot.Id, record.Id, snapshot.SizeBytes);
                return snapshot;
            }
            catch (Exception ex) when (ex is EngineCommandException or IOException)
            {
                // Judged before the partial files go: they hold the volume's last blocks.
                var full = FilledTheVolume(ex);
                DeleteQuietly(partialLayer);
                DeleteQuietly(layer);
                DeleteQuietly(checkpoint);
                throw full
                    ? VolumeFull($"{writing} of snapshot {snapshot.Id}", $"nothing was kept and sandbox {record.Id} runs on", ex)
                    : new EngineException(500, $"the snapshot failed and nothing was kept; the sandbox runs on: {ex.Message}", ex);
            }
            finally
            {
                DeleteQuietly(checkpoint + ".work");
                try
                {
                    if (paused)
                    {
                        await runtime.ResumeAsync(record.Id, CancellationToken.None).ConfigureAwait(false);
                    }
                }
                finally
                {
                    // Connected even when the thaw failed: a restart finds a frozen sandbox, never an unreachable one.
                    if (disconnected)
                    {
                        await SandboxNetwork.ConnectAsync(SlotOf(record), CancellationToken.None).ConfigureAwait(false);
                    }
                }

                SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
                store.Save(record);
            }
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Names a snapshot as an image; 404 for an unknown snapshot, 409 for a name in use.</summary>
    public void RegisterImage(ImageRecord image)
    {
        if (store.Snapshots().All(s => s.Id != image.SnapshotId || s.Status is not (SnapshotStatus.LocalReady or SnapshotStatus.Completed)))
        {
            throw new EngineException(404, $"snapshot '{image.SnapshotId}' not found or not ready");
        }

        if (images.Registered().Any(i => i.Name == image.Name))
        {
            throw new EngineException(409, $"an image named '{image.Name}' exists; delete it first (DELETE /platform/v1/sandbox-templates/{image.Name})");
        }

        images.Register(image);
    }

    public SnapshotRecord GetSnapshot(string id, string ns) =>
        store.Snapshots().FirstOrDefault(s => s.Id == id && s.Namespace == ns) ?? throw new EngineException(404, "Snapshot not found");

    public IReadOnlyList<SnapshotRecord> ListSnapshots(string ns) => [.. store.Snapshots().Where(s => s.Namespace == ns)];

    /// <summary>Deletes a snapshot's layer and CRIU image; 409 while a live sandbox or an image stands on its layer.</summary>
    public async Task DeleteSnapshotAsync(string id, string ns, CancellationToken cancellationToken)
    {
        var snapshot = GetSnapshot(id, ns);
        await _allocation.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var layer = snapshot.Layers.FirstOrDefault();
            var users = store.LiveSandboxes().Where(s => layer is not null && s.Layers.Contains(layer)).Select(s => s.Id).ToList();
            if (users.Count > 0)
            {
                throw new EngineException(409, $"snapshot {id} is the base of live sandboxes ({string.Join(", ", users)}); delete them first");
            }

            var dependents = store.Snapshots().Where(s => s.Id != id && layer is not null && s.Layers.Contains(layer)).Select(s => s.Id).ToList();
            if (dependents.Count > 0)
            {
                throw new EngineException(409, $"snapshot {id} is a layer of later snapshots ({string.Join(", ", dependents)}); delete them first");
            }

            var imageNames = store.Images().Where(i => i.SnapshotId == id).Select(i => i.Name).ToList();
            if (imageNames.Count > 0)
            {
                throw new EngineException(409, $"snapshot {id} is registered as image {string.Join(", ", imageNames)}; delete the image first");
            }

            store.DeleteSnapshot(id);
            if (layer is not null && layer.StartsWith(LayersDirectory, StringComparison.Ordinal))
            {
                DeleteQuietly(layer);
            }

            if (snapshot.CheckpointDirectory is { } checkpoint)
            {
                DeleteQuietly(checkpoint);
            }

            BlankDisks.Wake();
        }
        finally
        {
            _allocation.Release();
        }
    }

    /// <summary>The 507 of a snapshot the data volume cannot hold, found before anything is written.</summary>
    private EngineException DidNotFit(string detail, Exception? cause) => new(507,
        $"the snapshot did not fit in the engine's data volume ({volume.ImageFile}: {detail}); nothing was kept and the sandbox runs on. " +
        "Delete old snapshots or sandboxes, or restart the engine with a larger --volume-mb, then retry", cause);

    /// <summary>The 507 of a write into the data volume that met it full part of the way through (<paramref name="outcome"/>: what is left).</summary>
    private EngineException VolumeFull(string writing, string outcome, Exception cause) => new(507,
        $"the engine's data volume is full ({volume.ImageFile}, {volume.SizeBytes >> 20} MiB): it filled up during {writing} (No space left on device); " +
        $"{outcome}. Delete old snapshots or sandboxes, or restart the engine with a larger --volume-mb, then retry", cause);

    /// <summary>
    /// Whether a write into the data volume failed because the volume is full: the tool said ENOSPC, or the volume has
    /// nothing available (CRIU's own log is in the volume, so a dump that met it full may not have been able to say why).
    /// ext4 keeps a reserve of its own beyond root's, so "full" for the engine reads as 0 available, not 0 free.
    /// </summary>
    private bool FilledTheVolume(Exception ex) =>
        ex.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase) || ex.HResult == 28 || volume.FreeBytes == 0;

    private static long DirectorySize(string path) =>
        Directory.Exists(path) ? new DirectoryInfo(path).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Sum(f => f.Length) : 0;

    private void DeleteQuietly(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException ex)
        {
            logger.LogWarning("removing {Path}: {Error}", path, ex.Message);
        }
        catch (UnauthorizedAccessException ex)
        {
            logger.LogWarning("removing {Path}: {Error}", path, ex.Message);
        }
    }
}
