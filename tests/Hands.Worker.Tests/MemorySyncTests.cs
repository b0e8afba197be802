using System.Text.Json;
using Hands.Protocol;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Testing;
using Hands.Worker.Hosting;
using Hands.Worker.MemoryStores;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// The memory sync rules of <see cref="SessionMemoryStores"/> (the official TypeScript worker's), against a real
/// control plane on loopback, with the session's own sessions token, on a fake clock: cadence, merge, conflicts,
/// corroborated deletes, the marker rule, read-only stores, refusals and the flush.
/// </summary>
public sealed class MemorySyncTests : IAsyncLifetime
{
    private TestControlPlane _cp = null!;
    private string _mount = null!;
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.UtcNow);
    private readonly StringWriter _logText = new();
    private string Log => _logText.ToString();

    public async Task InitializeAsync()
    {
        _mount = Directory.CreateTempSubdirectory("hands-mnt-").FullName;
        _cp = await TestControlPlane.StartAsync(o => o.MemoryMountRoot = _mount);
    }

    public async Task DisposeAsync()
    {
        await _cp.DisposeAsync();
        Directory.Delete(_mount, recursive: true);
    }

    private async Task<MemoryStore> StoreAsync(string name, params (string Path, string Content)[] memories)
    {
        var store = await _cp.App.MemoryStores.CreateAsync(new() { Name = name });
        foreach (var (path, content) in memories)
        {
            await _cp.App.MemoryStores.CreateMemoryAsync(store.Id, path, content);
        }

        return store;
    }

    /// <summary>A session attaching <paramref name="stores"/>, and the sync engine on its work item's sessions token.</summary>
    private async Task<(SessionMemoryStores Sync, Session Session)> AttachAsync(MemoryDeleteMode deletions, params (MemoryStore Store, string Access)[] stores)
    {
        var (env, key) = await _cp.CreateEnvironmentAsync();
        var agent = await _cp.CreateAgentAsync("scripted:hello");
        await _cp.App.Sessions.CreateAsync(new()
        {
            Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
            EnvironmentId = env.Id,
            Resources = [.. stores.Select(s => TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{s.Store.Id}}","access":"{{s.Access}}"}"""))],
        });
        var item = (await _cp.Worker(key).Work.PollAsync(env.Id, 500))!;
        var token = WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!;
        var client = _cp.Client(ManagedAgentsCredential.Bearer(token));
        var session = await client.Sessions.GetAsync(item.Data.Id);
        var sync = new SessionMemoryStores(client, _mount, TimeSpan.FromSeconds(15), deletions, new WorkerLog("text", _logText), _clock);
        await sync.DownloadAsync(session, CancellationToken.None);
        return (sync, session);
    }

    private async Task<Dictionary<string, string>> RemoteAsync(MemoryStore store)
    {
        var all = new Dictionary<string, string>(StringComparer.Ordinal);
        await foreach (var m in _cp.App.MemoryStores.ListAllMemoriesAsync(store.Id, MemoryValues.ViewFull))
        {
            all[m.Path] = m.Content!;
        }

        return all;
    }

    private async Task<Memory> RemoteItemAsync(MemoryStore store, string path)
    {
        await foreach (var m in _cp.App.MemoryStores.ListAllMemoriesAsync(store.Id))
        {
            if (m.Path == path)
            {
                return m;
            }
        }

        throw new InvalidOperationException($"no memory at {path}");
    }

    private string Dir(MemoryStore store) => Path.Combine(_mount, store.Name);

    [Fact]
    public async Task Download_lands_every_memory_under_the_mount_path_with_the_marker()
    {
        var store = await StoreAsync("notes", ("/a.md", "alpha"), ("/deep/b/c.md", "gamma"), ("/empty.md", ""));
        var (sync, session) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        Assert.Equal(_mount + "/notes", session.Resources[0].GetProperty("mount_path").GetString());
        Assert.Equal("alpha", await File.ReadAllTextAsync(Path.Combine(root, "a.md")));
        Assert.Equal("gamma", await File.ReadAllTextAsync(Path.Combine(root, "deep/b/c.md")));
        Assert.Equal("", await File.ReadAllTextAsync(Path.Combine(root, "empty.md")));
        Assert.Equal("version 1\n" + store.Id, await File.ReadAllTextAsync(Path.Combine(root, SessionMemoryStores.MarkerPath)));
        Assert.Equal([root], sync.Roots);
        Assert.Empty(sync.ReadOnlyRoots);

        // Nothing may already sit at a store's path: a second session on the same mount path fails its download.
        var ex = await Assert.ThrowsAsync<SessionMemoryException>(() => AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write")));
        Assert.Contains("something already exists at the memory store's path", ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(root, "a.md"))); // the refused folder is left as found

        sync.Dispose();
        Assert.False(Directory.Exists(root));
    }

    [Fact]
    public async Task Syncs_run_on_the_interval_and_merge_per_path()
    {
        var store = await StoreAsync("merge", ("/local.md", "v1"), ("/remote.md", "v1"), ("/both.md", "v1"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        await File.WriteAllTextAsync(Path.Combine(root, "local.md"), "local edit");
        await File.WriteAllTextAsync(Path.Combine(root, "both.md"), "local side");
        await File.WriteAllTextAsync(Path.Combine(root, "newfile.md"), "brand new");
        var remoteItem = await RemoteItemAsync(store, "/remote.md");
        await _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, remoteItem.Id!, "remote edit");
        var bothItem = await RemoteItemAsync(store, "/both.md");
        await _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, bothItem.Id!, "remote side");

        // Before the interval: nothing moves.
        _clock.Advance(TimeSpan.FromSeconds(14));
        await sync.SyncIfDueAsync(CancellationToken.None);
        Assert.Equal("v1", (await RemoteAsync(store))["/local.md"]);
        Assert.Equal("v1", await File.ReadAllTextAsync(Path.Combine(root, "remote.md")));

        _clock.Advance(TimeSpan.FromSeconds(1));
        await sync.SyncIfDueAsync(CancellationToken.None);
        var remote = await RemoteAsync(store);
        Assert.Equal("local edit", remote["/local.md"]);                                        // local-only change: pushed
        Assert.Equal("brand new", remote["/newfile.md"]);                                       // new file: created
        Assert.Equal("remote edit", await File.ReadAllTextAsync(Path.Combine(root, "remote.md"))); // remote-only change: pulled
        Assert.Equal("remote side", remote["/both.md"]);                                        // both: the store wins
        Assert.Equal("remote side", await File.ReadAllTextAsync(Path.Combine(root, "both.md")));
        Assert.Contains("memory changed both locally and remotely; keeping the remote version", Log, StringComparison.Ordinal);

        // The push used a content_sha256 precondition: the version history shows one modification by this session.
        var local = await RemoteItemAsync(store, "/local.md");
        var versions = await _cp.App.MemoryStores.ListVersionsAsync(store.Id, local.Id);
        Assert.Equal("session_actor", versions.Data[0].CreatedBy!.Type);

        // Right after a sync the next is not due.
        await File.WriteAllTextAsync(Path.Combine(root, "local.md"), "again");
        await sync.SyncIfDueAsync(CancellationToken.None);
        Assert.Equal("local edit", (await RemoteAsync(store))["/local.md"]);
        sync.Dispose();
    }

    [Fact]
    public async Task A_work_item_without_a_sessions_token_fails_when_its_session_has_memory_stores()
    {
        var store = await StoreAsync("needs-token", ("/a.md", "a"));
        var (env, key) = await _cp.CreateEnvironmentAsync();
        var agent = await _cp.CreateAgentAsync("scripted:hello");
        var session = await _cp.App.Sessions.CreateAsync(new()
        {
            Agent = JsonSerializer.SerializeToElement(agent.Id, ProtocolJsonContext.Default.String),
            EnvironmentId = env.Id,
            Resources = [TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{store.Id}}"}""")],
        });
        var item = (await _cp.Worker(key).Work.PollAsync(env.Id, 500))!;
        await _cp.Worker(key).Work.AckAsync(env.Id, item.Id);
        var worker = new Hands.Worker.Runner.EnvironmentWorker(new()
        {
            BaseUrl = _cp.BaseAddress,
            EnvironmentId = env.Id,
            EnvironmentKey = key,
            Workdir = _mount,
            StateDirectory = Path.Combine(_mount, "state"),
            Log = new WorkerLog("text", _logText),
        });
        var outcome = await worker.HandleItemAsync(item.Id, session.Id, workSecret: null, CancellationToken.None);
        Assert.True(outcome.Failed);
        Assert.Contains("the work item carried no sessions token", outcome.EndReason, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_mount, "needs-token")));
        Assert.Equal("stopped", (await _cp.App.Work.GetAsync(env.Id, item.Id)).State);
    }

    [Fact]
    public void The_interval_is_at_least_five_seconds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => SessionMemoryStores.CheckInterval(TimeSpan.FromMilliseconds(4999)));
        SessionMemoryStores.CheckInterval(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_local_delete_reaches_the_store_only_after_thirty_seconds_and_a_recheck()
    {
        var store = await StoreAsync("deletes", ("/gone.md", "x"), ("/kept.md", "y"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        File.Delete(Path.Combine(root, "gone.md"));

        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Contains("/gone.md", (await RemoteAsync(store)).Keys);   // first sync that notices: not yet
        _clock.Advance(TimeSpan.FromSeconds(29));
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Contains("/gone.md", (await RemoteAsync(store)).Keys);
        _clock.Advance(TimeSpan.FromSeconds(1));
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.DoesNotContain("/gone.md", (await RemoteAsync(store)).Keys);
        Assert.Contains("/kept.md", (await RemoteAsync(store)).Keys);
        Assert.Contains("propagated local deletion", Log, StringComparison.Ordinal);

        // A file that reappears within the window cancels its delete.
        File.Delete(Path.Combine(root, "kept.md"));
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        await File.WriteAllTextAsync(Path.Combine(root, "kept.md"), "y");
        _clock.Advance(TimeSpan.FromSeconds(60));
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Contains("/kept.md", (await RemoteAsync(store)).Keys);

        // The final sync skips the wait.
        File.Delete(Path.Combine(root, "kept.md"));
        await sync.FinishAsync(CancellationToken.None);
        Assert.Empty(await RemoteAsync(store));
        await Assert.ThrowsAsync<InvalidOperationException>(() => sync.FinishAsync(CancellationToken.None));
        sync.Dispose();
    }

    [Theory]
    [InlineData(MemoryDeleteMode.LogOnly, "log-only: sync would delete this memory on the server")]
    [InlineData(MemoryDeleteMode.Disabled, null)]
    public async Task Deletions_can_be_logged_only_or_disabled(MemoryDeleteMode mode, string? logged)
    {
        var store = await StoreAsync("deletes-" + mode.ToString().ToLowerInvariant(), ("/gone.md", "x"), ("/other.md", "y"));
        var (sync, _) = await AttachAsync(mode, (store, "read_write"));
        File.Delete(Path.Combine(Dir(store), "gone.md"));
        await sync.FinishAsync(CancellationToken.None);
        Assert.Contains("/gone.md", (await RemoteAsync(store)).Keys);
        Assert.DoesNotContain("propagated local deletion", Log, StringComparison.Ordinal);
        if (logged is null)
        {
            Assert.DoesNotContain("log-only", Log, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains(logged, Log, StringComparison.Ordinal);
        }

        sync.Dispose();
    }

    [Fact]
    public async Task A_remote_delete_removes_the_file_unless_it_holds_unpushed_edits()
    {
        var store = await StoreAsync("remote-deletes", ("/plain.md", "p"), ("/edited.md", "e"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        await File.WriteAllTextAsync(Path.Combine(root, "edited.md"), "edited locally");
        foreach (var path in new[] { "/plain.md", "/edited.md" })
        {
            await _cp.App.MemoryStores.DeleteMemoryAsync(store.Id, (await RemoteItemAsync(store, path)).Id!);
        }

        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.False(File.Exists(Path.Combine(root, "plain.md")));
        Assert.Equal("edited locally", (await RemoteAsync(store))["/edited.md"]); // re-created from the only copy
        Assert.Contains("memory deleted remotely but edited locally; re-creating it from the file", Log, StringComparison.Ordinal);
        sync.Dispose();
    }

    [Fact]
    public async Task An_altered_or_missing_marker_stops_syncing_and_a_wiped_folder_is_downloaded_again()
    {
        var store = await StoreAsync("marker", ("/a.md", "a"), ("/b.md", "b"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        var marker = Path.Combine(root, SessionMemoryStores.MarkerPath);

        await File.WriteAllTextAsync(marker, "version 1\nmemstore_someone_else");
        await File.WriteAllTextAsync(Path.Combine(root, "a.md"), "not pushed");
        File.Delete(Path.Combine(root, "b.md"));
        await sync.FinishAsync(CancellationToken.None);
        Assert.Equal(new Dictionary<string, string> { ["/a.md"] = "a", ["/b.md"] = "b" }, await RemoteAsync(store));
        Assert.Contains("the marker file does not match this store; leaving the memory store folder as found and not syncing", Log, StringComparison.Ordinal);
        await sync.FlushWritesAsync(CancellationToken.None);
        Assert.Equal("a", (await RemoteAsync(store))["/a.md"]);
        sync.Dispose();
        Assert.True(File.Exists(Path.Combine(root, "a.md"))); // a distrusted folder is left on disk
        Directory.Delete(root, recursive: true);

        // A wiped folder (marker and files gone) is downloaded again rather than read as a mass delete.
        var store2 = await StoreAsync("wiped", ("/a.md", "a"), ("/b.md", "b"));
        var (sync2, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store2, "read_write"));
        Directory.Delete(Dir(store2), recursive: true);
        await sync2.FinishAsync(CancellationToken.None);
        Assert.Equal(2, (await RemoteAsync(store2)).Count);
        Assert.Equal("b", await File.ReadAllTextAsync(Path.Combine(Dir(store2), "b.md")));
        Assert.Contains("re-downloading the memory store folder instead of syncing", Log, StringComparison.Ordinal);
        sync2.Dispose();
    }

    [Fact]
    public async Task A_read_only_store_pulls_but_never_pushes_and_its_files_are_read_only()
    {
        var store = await StoreAsync("reference", ("/facts.md", "f1"), ("/other.md", "o1"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_only"));
        var root = Dir(store);
        Assert.Equal([root], sync.ReadOnlyRoots);
        Assert.Equal(UnixFileMode.UserRead, File.GetUnixFileMode(Path.Combine(root, "facts.md")));

        File.SetUnixFileMode(Path.Combine(root, "facts.md"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
        await File.WriteAllTextAsync(Path.Combine(root, "facts.md"), "changed in the sandbox");
        await File.WriteAllTextAsync(Path.Combine(root, "new.md"), "never pushed");
        File.Delete(Path.Combine(root, "other.md"));
        var item = await RemoteItemAsync(store, "/facts.md");
        await _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, item.Id!, "f2");
        await sync.FinishAsync(CancellationToken.None);
        await sync.FlushWritesAsync(CancellationToken.None);

        var remote = await RemoteAsync(store);
        Assert.Equal(new Dictionary<string, string> { ["/facts.md"] = "f2", ["/other.md"] = "o1" }, remote);
        Assert.Equal("f2", await File.ReadAllTextAsync(Path.Combine(root, "facts.md"))); // the remote change overwrites the local one
        sync.Dispose();
    }

    [Fact]
    public async Task A_file_the_store_refuses_is_skipped_until_it_changes()
    {
        var store = await StoreAsync("refusals");
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        await File.WriteAllTextAsync(Path.Combine(root, "big.md"), new string('x', MemoryValues.MaxContentBytes + 1));
        await File.WriteAllBytesAsync(Path.Combine(root, "binary.md"), [0xff, 0xfe, 0x00]);
        await File.WriteAllTextAsync(Path.Combine(root, "ok.md"), "fine");
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Equal(["/ok.md"], (await RemoteAsync(store)).Keys);
        var warnings = Log.Split('\n').Count(l => l.Contains("the server rejected this memory file", StringComparison.Ordinal));
        Assert.Equal(2, warnings);

        await sync.SyncAllAsync(final: false, CancellationToken.None);   // unchanged: not retried, not warned again
        Assert.Equal(2, Log.Split('\n').Count(l => l.Contains("the server rejected this memory file", StringComparison.Ordinal)));

        await File.WriteAllTextAsync(Path.Combine(root, "big.md"), "small now");
        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Equal("small now", (await RemoteAsync(store))["/big.md"]);
        sync.Dispose();
    }

    [Fact]
    public async Task The_flush_pushes_changed_files_and_leaves_remote_changes_alone()
    {
        var store = await StoreAsync("flush", ("/mine.md", "m1"), ("/theirs.md", "t1"), ("/both.md", "b1"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        await File.WriteAllTextAsync(Path.Combine(root, "mine.md"), "m2");
        await File.WriteAllTextAsync(Path.Combine(root, "both.md"), "b-local");
        await File.WriteAllTextAsync(Path.Combine(root, "fresh.md"), "new");
        File.Delete(Path.Combine(root, "theirs.md"));
        await _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, (await RemoteItemAsync(store, "/both.md")).Id!, "b-remote");

        await sync.FlushWritesAsync(CancellationToken.None);
        var remote = await RemoteAsync(store);
        Assert.Equal("m2", remote["/mine.md"]);
        Assert.Equal("new", remote["/fresh.md"]);
        Assert.Equal("t1", remote["/theirs.md"]);      // the flush sends no deletes
        Assert.Equal("b-remote", remote["/both.md"]);  // and leaves the remote version of a conflict
        Assert.Contains("the flush leaves the remote version", Log, StringComparison.Ordinal);
        sync.Dispose();
    }

    [Fact]
    public async Task A_push_that_loses_the_precondition_race_takes_the_store_version_next_time()
    {
        var store = await StoreAsync("race", ("/r.md", "base"));
        var (sync, _) = await AttachAsync(MemoryDeleteMode.Enabled, (store, "read_write"));
        var root = Dir(store);
        await File.WriteAllTextAsync(Path.Combine(root, "r.md"), "local");
        // The server moves on between this sync's listing and its push: simulated by editing it with the listing's
        // sha stale — the precondition refuses the push with 409.
        var item = await RemoteItemAsync(store, "/r.md");
        var stale = item.ContentSha256!;
        await _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, item.Id!, "remote");
        var conflict = await Assert.ThrowsAsync<ManagedAgentsException>(() => _cp.App.MemoryStores.UpdateMemoryAsync(store.Id, item.Id!, "local", expectedSha256: stale));
        Assert.Equal(409, conflict.Status);
        Assert.Equal(MemoryValues.PreconditionFailedError, conflict.ErrorType);

        await sync.SyncAllAsync(final: false, CancellationToken.None);
        Assert.Equal("remote", await File.ReadAllTextAsync(Path.Combine(root, "r.md")));
        Assert.Equal("remote", (await RemoteAsync(store))["/r.md"]);
        sync.Dispose();
    }
}
