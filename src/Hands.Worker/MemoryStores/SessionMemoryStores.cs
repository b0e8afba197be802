using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Worker.Hosting;

namespace Hands.Worker.MemoryStores;

/// <summary>What a locally deleted memory file does on the server (<c>memorySyncDeletions</c>).</summary>
public enum MemoryDeleteMode
{
    /// <summary>Deletes it there too (after the corroboration wait and a re-check, capped per sync).</summary>
    Enabled,
    /// <summary>Runs the same checks but only logs what it would delete.</summary>
    LogOnly,
    /// <summary>Never deletes on the server.</summary>
    Disabled,
}

/// <summary>A session's memory stores could not be mounted: the work item fails.</summary>
public sealed class SessionMemoryException : Exception
{
    public SessionMemoryException() { }

    public SessionMemoryException(string message) : base(message) { }

    public SessionMemoryException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>
/// The memory stores attached to one session, downloaded into folders and synced back, with the official TypeScript
/// worker's rules (npm <c>@anthropic-ai/sdk</c> 1.14.0, <c>tools/agent-toolset/memories.ts</c>):
/// <list type="bullet">
/// <item>each store lands at its resource's <c>mount_path</c> (a clean absolute path, else the item fails), or at
/// <c>{workdir}/memory/{name or id}</c> without one; something already at that path fails the item;</item>
/// <item>a marker file <c>.anthropic-memory-store</c> (<c>version 1\n{store id}</c>) ties the folder to its store: a
/// folder whose marker is gone or names another store is left as found (nothing pushed or deleted), an emptied or
/// vanished folder is downloaded again;</item>
/// <item>per path, against the baseline sha of the last sync: a remote-only change is pulled, a local-only change is
/// pushed (an update with a <c>content_sha256</c> precondition, or a create), a change on both sides keeps the store's
/// version (warning), a refusal the server would repeat (400/413, not UTF-8) is skipped until the file changes, a
/// 409 on a push leaves the local edit to lose on the next sync;</item>
/// <item>a local delete reaches the server only after <see cref="DeleteCorroboration"/> and a re-check, at most
/// 8-50 per sync (a quarter of the store), governed by <see cref="MemoryDeleteMode"/>; a remote delete removes the
/// file unless it holds edits that were never pushed;</item>
/// <item>read-only stores pull and never push.</item>
/// </list>
/// <see cref="SyncIfDueAsync"/> runs after tool calls (at most every sync interval), <see cref="FinishAsync"/> once at a
/// clean end, <see cref="FlushWritesAsync"/> (push only, bounded by the caller) in every teardown, <see cref="Dispose"/>
/// last. The syncs never throw; one bad store or file is logged and the rest continue. Not safe for concurrent use.
/// </summary>
public sealed class SessionMemoryStores
{
    /// <summary>Default sync interval (15 s).</summary>
    public static readonly TimeSpan DefaultSyncInterval = TimeSpan.FromSeconds(15);

    /// <summary>Shortest sync interval accepted (5 s).</summary>
    public static readonly TimeSpan MinSyncInterval = TimeSpan.FromSeconds(5);

    /// <summary>Bound of each teardown pass (the final sync, then the flush).</summary>
    public static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(30);

    /// <summary>How long a file must stay missing locally before its server delete goes out.</summary>
    public static readonly TimeSpan DeleteCorroboration = TimeSpan.FromSeconds(30);

    /// <summary>The marker file in every store folder; never synced.</summary>
    public const string MarkerPath = ".anthropic-memory-store";

    private const int DeleteCapFloor = 8;
    private const int DeleteCapCeiling = 50;
    private const int FetchConcurrency = 16;
    private const int UploadConcurrency = 32;

    private readonly ManagedAgentsClient _client;
    private readonly string _workdir;
    private readonly TimeSpan _interval;
    private readonly MemoryDeleteMode _deletions;
    private readonly WorkerLog _log;
    private readonly TimeProvider _time;
    private readonly List<AttachedStore> _stores = [];
    private DateTimeOffset _lastSyncAt;
    private bool _finished;

    public SessionMemoryStores(ManagedAgentsClient client, string workdir, TimeSpan? syncInterval, MemoryDeleteMode deletions, WorkerLog log, TimeProvider? time = null)
    {
        _client = client;
        _workdir = workdir;
        _interval = syncInterval ?? DefaultSyncInterval;
        CheckInterval(_interval);
        _deletions = deletions;
        _log = log;
        _time = time ?? TimeProvider.System;
        _lastSyncAt = _time.GetUtcNow();
    }

    /// <summary>Throws unless <paramref name="interval"/> is at least <see cref="MinSyncInterval"/>.</summary>
    public static void CheckInterval(TimeSpan interval)
    {
        if (interval < MinSyncInterval)
        {
            throw new ArgumentOutOfRangeException(nameof(interval),
                $"the memory sync interval must be at least {MinSyncInterval.TotalSeconds:0}s (got {interval.TotalMilliseconds:0}ms); to run without memory sync, turn it off instead");
        }
    }

    /// <summary>Every store's folder: the file tools' extra allowed roots.</summary>
    public IReadOnlyList<string> Roots => [.. _stores.Select(s => s.Files.Root)];

    /// <summary>Folders of stores attached read-only: <c>write</c> and <c>edit</c> refuse paths inside them.</summary>
    public IReadOnlyList<string> ReadOnlyRoots => [.. _stores.Where(s => s.ReadOnly).Select(s => s.Files.Root)];

    /// <summary>True when the session has at least one memory store attached.</summary>
    public static bool HasMemoryStore(Session session) => MemoryResources(session).Any();

    /// <summary>Downloads every attached store; throws <see cref="SessionMemoryException"/> on the first one that cannot land.</summary>
    public async Task DownloadAsync(Session session, CancellationToken ct)
    {
        foreach (var resource in MemoryResources(session))
        {
            var root = StoreRoot(resource);
            AttachedStore? store = new AttachedStore(resource.StoreId, MemoryFolder.Open(root, resource.ReadOnly), resource.ReadOnly);
            try
            {
                if (!store.Files.CreatedByUs)
                {
                    store = null;
                    throw new SessionMemoryException(
                        $"something already exists at the memory store's path: {root} (memory_store_id={resource.StoreId}); it must not exist when the session starts");
                }

                try
                {
                    store.Files.CreateRoot();
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    throw new SessionMemoryException(
                        $"cannot create the memory store's folder: {root} (memory_store_id={resource.StoreId}): {ex.Message}; the worker host must make this mount path writable", ex);
                }

                await StampAndPullAsync(store, ct);
                _log.Info("downloaded memories", ("count", store.Baseline.Count), ("memory_store_id", store.StoreId), ("dest", store.Files.Root));
                _stores.Add(store);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                TryDispose(store);
                throw ex is SessionMemoryException ? ex : new SessionMemoryException($"failed to download memory store memory_store_id={resource.StoreId}: {ex.Message}", ex);
            }
            catch
            {
                TryDispose(store);
                throw;
            }
        }

        _lastSyncAt = _time.GetUtcNow();
    }

    /// <summary>Syncs when the interval has passed since the last sync. Never throws (but for cancellation).</summary>
    public async Task SyncIfDueAsync(CancellationToken ct)
    {
        if (_time.GetUtcNow() - _lastSyncAt < _interval)
        {
            return;
        }

        await SyncAllAsync(final: false, ct);
    }

    /// <summary>The session's last sync: skips the delete wait, so it runs once.</summary>
    public async Task FinishAsync(CancellationToken ct)
    {
        if (_finished)
        {
            throw new InvalidOperationException("the final memory sync already ran; it runs once");
        }

        _finished = true;
        await SyncAllAsync(final: true, ct);
    }

    /// <summary>Reconciles every store once.</summary>
    internal async Task SyncAllAsync(bool final, CancellationToken ct)
    {
        await Task.WhenAll(_stores.Select(s => SyncStoreAsync(s, final, ct)));
        _lastSyncAt = _time.GetUtcNow();
    }

    /// <summary>
    /// Uploads new and changed files; sends no deletes, pulls nothing. Once <paramref name="ct"/> is cancelled no
    /// further upload starts and this returns without waiting for those in flight; a store cut off part-way logs how
    /// many changed files it had not uploaded. Never throws.
    /// </summary>
    public async Task FlushWritesAsync(CancellationToken ct)
    {
        var all = Task.WhenAll(_stores.Select(s => FlushStoreAsync(s, ct)));
        var cut = new TaskCompletionSource();
        await using (ct.Register(() => cut.TrySetResult()))
        {
            await Task.WhenAny(all, cut.Task);
        }
    }

    /// <summary>Removes the folders the download created, but a folder failing the marker check (left as found).</summary>
    public void Dispose()
    {
        foreach (var store in _stores)
        {
            try
            {
                var scan = ScanFolder(store);
                if (!scan.MarkerOk && scan.Files.Count > 0)
                {
                    _log.Warn($"{scan.DistrustReason}; leaving the memory store folder on disk", ("root", store.Files.Root), ("memory_store_id", store.StoreId));
                    continue;
                }

                store.Files.Dispose();
                if (store.Files.CreatedByUs)
                {
                    _log.Info("removed memory store dir", ("dest", store.Files.Root), ("memory_store_id", store.StoreId));
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or MemoryFileException)
            {
                _log.Warn("failed to remove the memory store folder", ("root", store.Files.Root), ("memory_store_id", store.StoreId), ("error", ex.Message));
            }
        }
    }

    // -- one store --------------------------------------------------------------------------------------------------

    private async Task SyncStoreAsync(AttachedStore store, bool final, CancellationToken ct)
    {
        try
        {
            var scan = ScanFolder(store);
            var local = scan.Files;
            if (!scan.MarkerOk)
            {
                if (local.Count > 0)
                {
                    _log.Warn($"{scan.DistrustReason}; leaving the memory store folder as found and not syncing", ("root", store.Files.Root), ("memory_store_id", store.StoreId));
                    return;
                }

                await RecoverAsync(store, "the folder or its marker is gone", ct);
                return;
            }

            var remote = await ListAsync(store.StoreId, MemoryValues.ViewBasic, ct);
            SettleSent(store, remote);
            if (local.Count == 0 && store.Baseline.Count > 1)
            {
                await RecoverAsync(store, "every memory file is gone at once", ct);
                return;
            }

            var deletes = new DeletePass(_deletions, Math.Max(DeleteCapFloor, Math.Min(DeleteCapCeiling, store.Baseline.Count / 4)), final);
            var pulls = new List<(string Rel, Memory Item)>();
            var baseline = new Dictionary<string, string>(StringComparer.Ordinal);
            var paths = remote.Keys.Concat(local.Keys).Concat(store.Baseline.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
            foreach (var rel in paths)
            {
                remote.TryGetValue(rel, out var remoteItem);
                var localSha = local.GetValueOrDefault(rel);
                var baseSha = store.Baseline.GetValueOrDefault(rel);
                string? sha;
                if (localSha is null && baseSha is not null && remoteItem is not null && remoteItem.ContentSha256 == baseSha && !store.ReadOnly)
                {
                    sha = await CorroboratedDeleteAsync(store, rel, remoteItem, baseSha, deletes, ct);
                }
                else
                {
                    sha = await SyncPathAsync(store, rel, remoteItem, localSha, pulls, ct);
                }

                if (sha is not null)
                {
                    baseline[rel] = sha;
                }
            }

            store.Baseline = baseline;
            await PullAllAsync(store, pulls, ct);
            if (deletes.Suppressed > 0)
            {
                _log.Debug("remote deletes are disabled; locally deleted memories stay on the server", ("count", deletes.Suppressed), ("memory_store_id", store.StoreId));
            }

            if (deletes.Capped > 0)
            {
                _log.Warn($"delete cap reached: {(deletes.Mode == MemoryDeleteMode.LogOnly ? "would send" : "sent")} {deletes.Attempted} deletes, held {deletes.Capped} for later syncs",
                    ("memory_store_id", store.StoreId));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            _log.Warn("memory sync failed", ("memory_store_id", store.StoreId), ("error", ex.Message));
        }
    }

    /// <summary>Reconciles one path; returns the sha to keep in the baseline, or null to drop it.</summary>
    private async Task<string?> SyncPathAsync(AttachedStore store, string rel, Memory? remote, string? localSha, List<(string, Memory)> pulls, CancellationToken ct)
    {
        var baseSha = store.Baseline.GetValueOrDefault(rel);
        if (localSha is not null)
        {
            store.PendingDeletes.Remove(rel);
        }

        if (remote is null)
        {
            if (localSha is null)
            {
                store.PendingDeletes.Remove(rel);
                return null;
            }

            if (baseSha is not null)
            {
                if (localSha == baseSha)
                {
                    var fresh = RemoveLocal(store, rel, baseSha);
                    if (fresh is null)
                    {
                        return null;
                    }

                    if (fresh == baseSha)
                    {
                        return baseSha;
                    }

                    localSha = fresh;
                }

                // The file holds an edit that was never pushed: the only copy, so it is kept (and re-created when writable).
                if (store.ReadOnly)
                {
                    _log.Warn("memory deleted remotely but edited locally; keeping the file, which a read-only store cannot push", ("path", rel), ("memory_store_id", store.StoreId));
                }
                else if (store.RefusedShas.GetValueOrDefault(rel) != localSha)
                {
                    _log.Info("memory deleted remotely but edited locally; re-creating it from the file", ("path", rel), ("memory_store_id", store.StoreId));
                }
            }

            if (store.ReadOnly || store.RefusedShas.GetValueOrDefault(rel) == localSha)
            {
                return null;
            }

            return await UploadAsync(store, rel, localSha, null, ct);
        }

        var remoteSha = remote.ContentSha256!;
        var remoteChanged = remoteSha != baseSha;
        var locallyEdited = localSha is not null && localSha != baseSha && localSha != remoteSha;
        var localChanged = !store.ReadOnly && locallyEdited;

        if (localSha is null && baseSha is not null)
        {
            // Deleted locally (only files written successfully enter the baseline); an unchanged remote went to the delete path.
            if (remoteChanged)
            {
                _log.Warn("memory deleted locally but changed remotely; restoring the remote version", ("path", rel), ("memory_store_id", store.StoreId));
                store.PendingDeletes.Remove(rel);
                pulls.Add((rel, remote));
            }

            return baseSha;
        }

        if (remoteChanged)
        {
            if (localSha == remoteSha)
            {
                return remoteSha;
            }

            if (locallyEdited)
            {
                _log.Warn("memory changed both locally and remotely; keeping the remote version", ("path", rel), ("memory_store_id", store.StoreId));
            }

            pulls.Add((rel, remote));
            return baseSha;
        }

        if (localChanged)
        {
            if (store.RefusedShas.GetValueOrDefault(rel) == localSha)
            {
                return remoteSha;
            }

            return await UploadAsync(store, rel, localSha, remote, ct) ?? remoteSha;
        }

        return remoteSha;
    }

    private async Task FlushStoreAsync(AttachedStore store, CancellationToken ct)
    {
        var dirty = new Dictionary<string, string>(StringComparer.Ordinal);
        var unsent = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            if (store.ReadOnly)
            {
                return;
            }

            var scan = ScanFolder(store);
            if (!scan.MarkerOk)
            {
                _log.Warn($"{scan.DistrustReason}; not uploading anything from the memory store folder", ("root", store.Files.Root), ("memory_store_id", store.StoreId));
                return;
            }

            foreach (var (rel, sha) in scan.Files)
            {
                // A path with an unsettled send counts even at its baseline sha: the send may have landed.
                var changed = sha != store.Baseline.GetValueOrDefault(rel) || store.SentShas.ContainsKey(rel);
                if (changed && store.RefusedShas.GetValueOrDefault(rel) != sha)
                {
                    dirty[rel] = sha;
                    unsent.Add(rel);
                }
            }

            if (dirty.Count == 0 || ct.IsCancellationRequested)
            {
                return;
            }

            var remote = await ListAsync(store.StoreId, MemoryValues.ViewBasic, ct);
            SettleSent(store, remote);
            var uploads = new List<(string Rel, string? LocalSha, Memory? Existing)>();
            foreach (var rel in dirty.Keys.Order(StringComparer.Ordinal))
            {
                var localSha = dirty[rel];
                var baseSha = store.Baseline.GetValueOrDefault(rel);
                remote.TryGetValue(rel, out var existing);
                if (localSha == baseSha)
                {
                    unsent.Remove(rel);
                    continue;
                }

                if (existing is not null && existing.ContentSha256 == localSha)
                {
                    store.Baseline[rel] = localSha;
                    unsent.Remove(rel);
                    continue;
                }

                if (existing is not null && existing.ContentSha256 != baseSha)
                {
                    _log.Warn("memory changed both locally and remotely; the flush leaves the remote version", ("path", rel), ("memory_store_id", store.StoreId));
                    unsent.Remove(rel);
                    continue;
                }

                uploads.Add((rel, localSha, existing));
            }

            await ForEachBoundedAsync(uploads, UploadConcurrency, async u =>
            {
                if (ct.IsCancellationRequested)
                {
                    return;
                }

                var sha = await UploadAsync(store, u.Rel, u.LocalSha, u.Existing, ct);
                lock (store)
                {
                    unsent.Remove(u.Rel);
                    if (sha is not null)
                    {
                        store.Baseline[u.Rel] = sha;
                    }
                }
            });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            _log.Warn("memory flush failed", ("memory_store_id", store.StoreId), ("error", ex.Message));
        }
        catch (OperationCanceledException)
        {
            // cut off by the caller's bound: reported below
        }
        finally
        {
            if (ct.IsCancellationRequested && unsent.Count > 0)
            {
                _log.Warn($"memory flush cut off part-way; {unsent.Count} of {dirty.Count} changed files had not finished uploading", ("memory_store_id", store.StoreId));
            }
        }
    }

    private async Task RecoverAsync(AttachedStore store, string reason, CancellationToken ct)
    {
        _log.Warn($"{reason}; re-downloading the memory store folder instead of syncing", ("root", store.Files.Root), ("memory_store_id", store.StoreId));
        store.Files.CreateRoot();
        await StampAndPullAsync(store, ct);
    }

    /// <summary>Writes the marker, then every memory (listed with content). The baseline holds only files written.</summary>
    private async Task StampAndPullAsync(AttachedStore store, CancellationToken ct)
    {
        store.Baseline = new(StringComparer.Ordinal);
        store.SentShas.Clear();
        store.PendingDeletes.Clear();
        store.Files.Put(MarkerPath, MarkerContent(store.StoreId));
        await foreach (var (rel, item) in ListPagesAsync(store.StoreId, MemoryValues.ViewFull, ct))
        {
            if (Write(store, rel, item.Content ?? ""))
            {
                store.Baseline[rel] = item.ContentSha256!;
            }
        }
    }

    private static void SettleSent(AttachedStore store, Dictionary<string, Memory> remote)
    {
        foreach (var (rel, sha) in store.SentShas)
        {
            if (remote.TryGetValue(rel, out var item) && item.ContentSha256 == sha)
            {
                store.Baseline[rel] = sha;
            }
        }

        store.SentShas.Clear();
    }

    /// <summary>Removes the file of a memory the server no longer has if it still holds <paramref name="expectSha"/>: null when gone, <paramref name="expectSha"/> to keep it in the baseline, or the file's new sha when it was edited since the scan.</summary>
    private string? RemoveLocal(AttachedStore store, string rel, string expectSha)
    {
        string? fresh;
        try
        {
            fresh = store.Files.HashFile(rel);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or MemoryFileException)
        {
            return expectSha;
        }

        if (fresh is null)
        {
            return null;
        }

        if (fresh != expectSha)
        {
            return fresh;
        }

        try
        {
            store.Files.Remove(rel);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or MemoryFileException)
        {
            _log.Warn("failed to remove memory deleted remotely", ("path", rel), ("memory_store_id", store.StoreId), ("error", ex.Message));
            return expectSha;
        }

        return null;
    }

    private bool Write(AttachedStore store, string rel, string content)
    {
        try
        {
            store.Files.Put(rel, content);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or MemoryFileException)
        {
            _log.Warn("failed to write memory", ("path", rel), ("memory_store_id", store.StoreId), ("error", ex.Message));
            return false;
        }
    }

    private async Task PullAllAsync(AttachedStore store, List<(string Rel, Memory Item)> pulls, CancellationToken ct)
    {
        await ForEachBoundedAsync(pulls, FetchConcurrency, async p =>
        {
            Memory item;
            try
            {
                item = await _client.MemoryStores.GetMemoryAsync(store.StoreId, p.Item.Id!, MemoryValues.ViewFull, ct);
            }
            catch (ManagedAgentsException ex)
            {
                if (ex.Status != 404)
                {
                    _log.Warn("failed to fetch memory content", ("path", p.Rel), ("memory_store_id", store.StoreId), ("error", ex.Message));
                }

                return;
            }

            if (Write(store, p.Rel, item.Content ?? ""))
            {
                lock (store)
                {
                    store.Baseline[p.Rel] = item.ContentSha256!;
                }
            }
        });
    }

    /// <summary>Pushes one file; null keeps the old baseline so the next pass retries.</summary>
    private async Task<string?> UploadAsync(AttachedStore store, string rel, string? localSha, Memory? existing, CancellationToken ct)
    {
        try
        {
            var content = store.Files.Get(rel);
            if (content is null)
            {
                return null;
            }

            lock (store)
            {
                store.SentShas[rel] = Sha256(content);
            }

            var item = existing is not null
                ? await _client.MemoryStores.UpdateMemoryAsync(store.StoreId, existing.Id!, content, expectedSha256: existing.ContentSha256, cancellationToken: ct)
                : await _client.MemoryStores.CreateMemoryAsync(store.StoreId, "/" + rel, content, ct);
            lock (store)
            {
                store.RefusedShas.Remove(rel);
                store.SentShas.Remove(rel);
            }

            return item.ContentSha256;
        }
        catch (ManagedAgentsException ex) when (existing is not null && ex.Status == 404)
        {
            // Deleted remotely since the listing: this file is now the only copy.
            return await UploadAsync(store, rel, localSha, null, ct);
        }
        catch (Exception ex) when (ex is ManagedAgentsException or MemoryFileException or IOException or UnauthorizedAccessException)
        {
            var status = (ex as ManagedAgentsException)?.Status;
            var permanent = ex is MemoryFileException || status is 400 or 413;
            if (existing is not null && status == 409)
            {
                _log.Warn("memory changed both locally and remotely; the upload was refused and the local edit loses", ("path", rel), ("memory_store_id", store.StoreId));
            }
            else if (permanent && localSha is not null)
            {
                lock (store)
                {
                    store.RefusedShas[rel] = localSha;
                }

                _log.Warn("the server rejected this memory file, so it stays un-synced until its content changes", ("path", rel), ("memory_store_id", store.StoreId), ("rejection", ex.Message));
            }
            else
            {
                _log.Warn("failed to upload memory", ("path", rel), ("memory_store_id", store.StoreId), ("error", ex.Message));
            }

            return null;
        }
    }

    private async Task<string?> CorroboratedDeleteAsync(AttachedStore store, string rel, Memory remote, string baseSha, DeletePass deletes, CancellationToken ct)
    {
        if (deletes.Mode == MemoryDeleteMode.Disabled)
        {
            deletes.Suppressed++;
            return baseSha;
        }

        var now = _time.GetUtcNow();
        if (!store.PendingDeletes.TryGetValue(rel, out var firstAbsent))
        {
            firstAbsent = now;
            store.PendingDeletes[rel] = firstAbsent;
        }

        if (!deletes.WaiveWindow && now - firstAbsent < DeleteCorroboration)
        {
            return baseSha;
        }

        bool markerOk, stillAbsent;
        try
        {
            // Re-check: the folder may have been wiped mid-sync.
            markerOk = store.Files.HashFile(MarkerPath) == MarkerSha(store.StoreId);
            stillAbsent = store.Files.HashFile(rel) is null;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or MemoryFileException)
        {
            markerOk = stillAbsent = false;
        }

        if (!markerOk)
        {
            return baseSha;
        }

        if (!stillAbsent)
        {
            store.PendingDeletes.Remove(rel);
            return baseSha;
        }

        if (!deletes.TakeSlot())
        {
            return baseSha;
        }

        if (deletes.Mode == MemoryDeleteMode.LogOnly)
        {
            _log.Info("log-only: sync would delete this memory on the server", ("path", rel), ("memory_store_id", store.StoreId));
            return baseSha;
        }

        try
        {
            await _client.MemoryStores.DeleteMemoryAsync(store.StoreId, remote.Id!, baseSha, ct);
        }
        catch (ManagedAgentsException ex)
        {
            if (ex.Status == 404)
            {
                store.PendingDeletes.Remove(rel);
                return null;
            }

            if (ex.Status is 409 or 412)
            {
                _log.Warn("memory deleted locally but changed remotely; keeping the remote version", ("path", rel), ("memory_store_id", store.StoreId));
            }
            else
            {
                _log.Warn("failed to delete memory", ("path", rel), ("memory_store_id", store.StoreId), ("error", ex.Message));
            }

            return baseSha;
        }

        _log.Info("propagated local deletion", ("path", rel), ("memory_store_id", store.StoreId));
        store.PendingDeletes.Remove(rel);
        return null;
    }

    // -- helpers ----------------------------------------------------------------------------------------------------

    private async Task<Dictionary<string, Memory>> ListAsync(string storeId, string view, CancellationToken ct)
    {
        var remote = new Dictionary<string, Memory>(StringComparer.Ordinal);
        await foreach (var (rel, item) in ListPagesAsync(storeId, view, ct))
        {
            remote[rel] = item;
        }

        return remote;
    }

    /// <summary>The store's memories keyed by relative path (leading '/' stripped); roll-ups and the marker path are skipped.</summary>
    private async IAsyncEnumerable<(string Rel, Memory Item)> ListPagesAsync(string storeId, string view, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        var limit = view == MemoryValues.ViewBasic ? MemoryValues.MaxBasicPage : MemoryValues.MaxFullPage;
        await foreach (var item in _client.MemoryStores.ListAllMemoriesAsync(storeId, view, limit, ct))
        {
            if (item.Type != "memory")
            {
                continue;
            }

            var rel = item.Path.TrimStart('/');
            if (rel == MarkerPath)
            {
                _log.Warn("the server listed the reserved marker path; skipping", ("path", item.Path), ("memory_store_id", storeId));
                continue;
            }

            yield return (rel, item);
        }
    }

    private static Scan ScanFolder(AttachedStore store)
    {
        var local = store.Files.HashTree();
        local.Remove(MarkerPath, out var marker);
        if (marker == MarkerSha(store.StoreId))
        {
            return new Scan(local, true, null);
        }

        return new Scan(local, false, marker is not null ? "the marker file does not match this store" : "the marker file is gone");
    }

    private string StoreRoot(MemoryResource resource)
    {
        if (!string.IsNullOrEmpty(resource.MountPath))
        {
            if (!resource.MountPath.StartsWith('/') || resource.MountPath.Split('/').Contains(".."))
            {
                throw new SessionMemoryException(
                    $"memory store mount_path is not a clean absolute path: {JsonSerializer.Serialize(resource.MountPath, Hands.Protocol.Json.ProtocolJsonContext.Default.String)} (memory_store_id={resource.StoreId})");
            }

            return resource.MountPath;
        }

        return Path.Combine(_workdir, "memory", string.IsNullOrEmpty(resource.Name) ? resource.StoreId : resource.Name);
    }

    private static IEnumerable<MemoryResource> MemoryResources(Session session)
    {
        foreach (var r in session.Resources)
        {
            if (r.ValueKind != JsonValueKind.Object || Str(r, "type") != "memory_store" || Str(r, "memory_store_id") is not { Length: > 0 } id)
            {
                continue;
            }

            yield return new MemoryResource(id, Str(r, "mount_path"), Str(r, "name"), Str(r, "access") == "read_only");
        }

        static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    private void TryDispose(AttachedStore? store)
    {
        if (store is null)
        {
            return;
        }

        try
        {
            store.Files.Dispose();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Warn("failed to remove a half-downloaded memory store folder", ("root", store.Files.Root), ("error", ex.Message));
        }
    }

    private static async Task ForEachBoundedAsync<T>(List<T> items, int concurrency, Func<T, Task> action)
    {
        if (items.Count == 0)
        {
            return;
        }

        var index = -1;
        async Task Worker()
        {
            int i;
            while ((i = Interlocked.Increment(ref index)) < items.Count)
            {
                await action(items[i]);
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, items.Count)).Select(_ => Worker()));
    }

    internal static string MarkerContent(string storeId) => $"version 1\n{storeId}";

    internal static string MarkerSha(string storeId) => Sha256(MarkerContent(storeId));

    internal static string Sha256(string content) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));

    private sealed record MemoryResource(string StoreId, string? MountPath, string? Name, bool ReadOnly);

    private sealed record Scan(Dictionary<string, string> Files, bool MarkerOk, string? DistrustReason);

    private sealed class AttachedStore(string storeId, MemoryFolder files, bool readOnly)
    {
        public string StoreId { get; } = storeId;
        public MemoryFolder Files { get; } = files;
        public bool ReadOnly { get; } = readOnly;
        public Dictionary<string, string> Baseline { get; set; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> RefusedShas { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, DateTimeOffset> PendingDeletes { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, string> SentShas { get; } = new(StringComparer.Ordinal);
    }

    private sealed class DeletePass(MemoryDeleteMode mode, int cap, bool waiveWindow)
    {
        public MemoryDeleteMode Mode { get; } = mode;
        public bool WaiveWindow { get; } = waiveWindow;
        public int Attempted { get; private set; }
        public int Capped { get; private set; }
        public int Suppressed { get; set; }

        public bool TakeSlot()
        {
            if (Attempted >= cap)
            {
                Capped++;
                return false;
            }

            Attempted++;
            return true;
        }
    }
}
