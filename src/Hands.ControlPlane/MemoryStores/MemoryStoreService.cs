using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Sessions;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Microsoft.Data.Sqlite;

namespace Hands.ControlPlane.MemoryStores;

/// <summary>
/// Memory stores, their memories and memory versions (<c>/v1/memory_stores</c>). Stores are managed with the API key.
/// Memories are read and written with the API key, or with a sessions token for the stores attached to that token's
/// session (writes only where attached <c>read_write</c>); an environment key is refused, as the hosted service does.
/// </summary>
public sealed class MemoryStoreService(ControlPlaneCore core)
{
    private static readonly ProtocolJsonContext J = ProtocolJsonContext.Default;
    private const string ApiKeyActorId = "apikey_local";

    // stores

    public async Task<MemoryStore> CreateAsync(Caller caller, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("create memory stores");
        body.OnlyFields("name", "description", "metadata");
        var name = body.RequireString("name", 1, 255);
        var description = body.OptionalString("description", maxLength: 1024) ?? "";
        var metadata = body.OptionalMetadata("metadata");
        return await core.WriteAsync(scope =>
        {
            var store = new MemoryStore
            {
                Id = Ids.New("memstore"),
                Name = name,
                Description = description,
                Metadata = metadata?.Where(p => p.Value is not null).ToDictionary(p => p.Key, p => p.Value!) ?? [],
                CreatedAt = scope.NowText,
                UpdatedAt = scope.NowText,
            };
            PutStore(scope.Sql, store);
            return store;
        }, ct);
    }

    public MemoryStore Get(Caller caller, string storeId)
    {
        return core.Read(sql =>
        {
            var store = GetStore(sql, storeId);
            if (caller.Kind != CallerKind.ApiKey)
            {
                Attachment(sql, caller, storeId, write: false);
            }

            return store;
        });
    }

    public Page<MemoryStore> List(Caller caller, ArchivableListQuery query)
    {
        caller.RequireApiKey("list memory stores");
        var (limit, after) = query.Page;
        var rows = core.Read(sql => sql.Query(
            "SELECT rowid, json FROM memory_stores WHERE ($all=1 OR archived=0) AND ($after IS NULL OR rowid < $after) ORDER BY rowid DESC LIMIT $n",
            r => (r.GetInt64(0), Store.Deserialize(r.GetString(1), J.MemoryStore)),
            ("$all", query.IncludeArchived ? 1 : 0), ("$after", after), ("$n", limit + 1)));
        return Paging.ToPage(rows, limit);
    }

    public async Task<MemoryStore> UpdateAsync(Caller caller, string storeId, JsonBody body, CancellationToken ct)
    {
        caller.RequireApiKey("update memory stores");
        body.OnlyFields("name", "description", "metadata");
        var name = body.OptionalString("name", 1, 255);
        var description = body.OptionalString("description", maxLength: 1024);
        var metadata = body.OptionalMetadata("metadata", allowNullValues: true);
        return await core.WriteAsync(scope =>
        {
            var store = GetStore(scope.Sql, storeId);
            store.Name = name ?? store.Name;
            if (body.Has("description"))
            {
                store.Description = description ?? "";
            }

            foreach (var (key, value) in metadata ?? [])
            {
                if (string.IsNullOrEmpty(value))
                {
                    store.Metadata.Remove(key);
                }
                else
                {
                    store.Metadata[key] = value;
                }
            }

            if (store.Metadata.Count > 16)
            {
                throw ApiException.Invalid("metadata: at most 16 key-value pairs are allowed");
            }

            store.UpdatedAt = scope.NowText;
            PutStore(scope.Sql, store);
            return store;
        }, ct);
    }

    public async Task<MemoryStore> ArchiveAsync(Caller caller, string storeId, CancellationToken ct)
    {
        caller.RequireApiKey("archive memory stores");
        return await core.WriteAsync(scope =>
        {
            var store = GetStore(scope.Sql, storeId);
            if (store.ArchivedAt is null)
            {
                store.ArchivedAt = scope.NowText;
                store.UpdatedAt = scope.NowText;
                PutStore(scope.Sql, store);
            }

            return store;
        }, ct);
    }

    public async Task<DeletedResource> DeleteAsync(Caller caller, string storeId, CancellationToken ct)
    {
        caller.RequireApiKey("delete memory stores");
        return await core.WriteAsync(scope =>
        {
            GetStore(scope.Sql, storeId);
            scope.Sql.Exec("DELETE FROM memories WHERE store_id=$s", ("$s", storeId));
            scope.Sql.Exec("DELETE FROM memory_versions WHERE store_id=$s", ("$s", storeId));
            scope.Sql.Exec("DELETE FROM memory_stores WHERE id=$s", ("$s", storeId));
            return new DeletedResource { Id = storeId, Type = "memory_store_deleted" };
        }, ct);
    }

    // memories

    public Page<Memory> ListMemories(Caller caller, string storeId, MemoryListQuery query)
    {
        return core.Read(sql =>
        {
            GetStore(sql, storeId);
            Attachment(sql, caller, storeId, write: false);
            var full = query.View == MemoryValues.ViewFull;
            var rows = sql.Query(
                "SELECT path, id FROM memories WHERE store_id=$s AND substr(path,1,length($p))=$p ORDER BY path",
                r => (Path: r.GetString(0), Id: r.GetString(1)), ("$s", storeId), ("$p", query.PathPrefix));
            rows.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));

            // Roll deeper memories up into prefixes when a depth is asked for; keep the listing in path order.
            var items = new List<(string Path, string? Id)>();
            var seenPrefixes = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (path, id) in rows)
            {
                var below = path[query.PathPrefix.Length..].Split('/');
                if (query.Depth > 0 && below.Length > query.Depth)
                {
                    var prefix = query.PathPrefix + string.Join('/', below.Take(query.Depth)) + "/";
                    if (seenPrefixes.Add(prefix))
                    {
                        items.Add((prefix, null));
                    }
                }
                else
                {
                    items.Add((path, id));
                }
            }

            items.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
            var start = query.After is null ? 0 : items.FindIndex(i => string.CompareOrdinal(i.Path, query.After) > 0);
            if (start < 0)
            {
                start = items.Count;
            }

            var pageItems = items.Skip(start).Take(query.Limit).ToList();
            var data = pageItems.Select(i => i.Id is null
                    ? new Memory { Type = "memory_prefix", Path = i.Path }
                    : ReadMemory(sql, storeId, i.Id, full)!)
                .ToList();
            return new Page<Memory>
            {
                Data = data,
                NextPage = start + query.Limit < items.Count ? MemoryListQuery.EncodeCursor(pageItems[^1].Path) : null,
            };
        });
    }

    public Memory GetMemory(Caller caller, string storeId, string memoryId, string view)
    {
        return core.Read(sql =>
        {
            GetStore(sql, storeId);
            Attachment(sql, caller, storeId, write: false);
            return ReadMemory(sql, storeId, memoryId, view == MemoryValues.ViewFull) ?? throw MemoryNotFound(storeId, memoryId);
        });
    }

    public async Task<Memory> CreateMemoryAsync(Caller caller, string storeId, JsonBody body, string view, CancellationToken ct)
    {
        body.OnlyFields("path", "content");
        var path = body.RequireString("path");
        MemoryPaths.Validate("path", path);
        if (!body.Has("content"))
        {
            throw ApiException.Invalid("content: Field required");
        }

        var content = body.OptionalString("content") ?? "";
        MemoryPaths.ValidateContent("content", content);
        return await core.WriteAsync(scope =>
        {
            var store = GetWritableStore(scope.Sql, caller, storeId);
            CheckPathFree(scope.Sql, store.Id, path, exceptId: null);
            var count = scope.Sql.Scalar<long>("SELECT COUNT(*) FROM memories WHERE store_id=$s", ("$s", storeId));
            if (count >= MemoryValues.MaxMemoriesPerStore)
            {
                throw ApiException.Invalid($"memory store {storeId} already holds {MemoryValues.MaxMemoriesPerStore} memories, the most a store can hold");
            }

            var id = Ids.New("mem");
            var versionId = RecordVersion(scope, caller, storeId, id, "created", path, content);
            scope.Sql.Exec("""
                INSERT INTO memories(id,store_id,path,content,sha,size,version_id,created_at,updated_at)
                VALUES($id,$s,$p,$c,$h,$n,$v,$t,$t)
                """, ("$id", id), ("$s", storeId), ("$p", path), ("$c", content), ("$h", Sha256(content)),
                ("$n", Encoding.UTF8.GetByteCount(content)), ("$v", versionId), ("$t", scope.NowText));
            Touch(scope, storeId);
            return ReadMemory(scope.Sql, storeId, id, view == MemoryValues.ViewFull)!;
        }, ct);
    }

    public async Task<Memory> UpdateMemoryAsync(Caller caller, string storeId, string memoryId, JsonBody body, string view, CancellationToken ct)
    {
        body.OnlyFields("path", "content", "precondition");
        var path = body.OptionalString("path");
        if (path is not null)
        {
            MemoryPaths.Validate("path", path);
        }

        var content = body.OptionalString("content");
        if (content is not null)
        {
            MemoryPaths.ValidateContent("content", content);
        }

        string? expected = null;
        if (body.OptionalObject("precondition") is { } precondition)
        {
            precondition.OnlyFields("type", "content_sha256");
            if (precondition.RequireString("type") != "content_sha256")
            {
                throw ApiException.Invalid("precondition.type: Input should be 'content_sha256'");
            }

            expected = precondition.RequireString("content_sha256");
            CheckSha("precondition.content_sha256", expected);
        }

        return await core.WriteAsync(scope =>
        {
            GetWritableStore(scope.Sql, caller, storeId);
            var current = ReadMemory(scope.Sql, storeId, memoryId, full: true) ?? throw MemoryNotFound(storeId, memoryId);
            var newContent = content ?? current.Content!;
            var newPath = path ?? current.Path;
            var unchanged = newContent == current.Content && newPath == current.Path;
            if (expected is not null && expected != current.ContentSha256)
            {
                // A retry of an update that already landed finds the memory as it asked for: that is a success.
                if (unchanged)
                {
                    return Shape(current, view == MemoryValues.ViewFull);
                }

                throw new ApiException(409, MemoryValues.PreconditionFailedError,
                    $"precondition: memory {memoryId} no longer has content_sha256 {expected} (it changed since it was read); re-read it and retry",
                    shouldRetry: false);
            }

            if (unchanged)
            {
                return Shape(current, view == MemoryValues.ViewFull);
            }

            if (newPath != current.Path)
            {
                CheckPathFree(scope.Sql, storeId, newPath, exceptId: memoryId);
            }

            var versionId = RecordVersion(scope, caller, storeId, memoryId, "modified", newPath, newContent);
            scope.Sql.Exec("UPDATE memories SET path=$p, content=$c, sha=$h, size=$n, version_id=$v, updated_at=$t WHERE id=$id",
                ("$id", memoryId), ("$p", newPath), ("$c", newContent), ("$h", Sha256(newContent)),
                ("$n", Encoding.UTF8.GetByteCount(newContent)), ("$v", versionId), ("$t", scope.NowText));
            Touch(scope, storeId);
            return ReadMemory(scope.Sql, storeId, memoryId, view == MemoryValues.ViewFull)!;
        }, ct);
    }

    public async Task<DeletedResource> DeleteMemoryAsync(Caller caller, string storeId, string memoryId, string? expectedSha, CancellationToken ct)
    {
        if (!string.IsNullOrEmpty(expectedSha))
        {
            CheckSha("expected_content_sha256", expectedSha);
        }

        return await core.WriteAsync(scope =>
        {
            GetWritableStore(scope.Sql, caller, storeId);
            var current = ReadMemory(scope.Sql, storeId, memoryId, full: false) ?? throw MemoryNotFound(storeId, memoryId);
            if (!string.IsNullOrEmpty(expectedSha) && expectedSha != current.ContentSha256)
            {
                throw new ApiException(409, MemoryValues.PreconditionFailedError,
                    $"expected_content_sha256: memory {memoryId} no longer has content_sha256 {expectedSha} (it changed since it was read); nothing was deleted",
                    shouldRetry: false);
            }

            RecordVersion(scope, caller, storeId, memoryId, "deleted", current.Path, null);
            scope.Sql.Exec("DELETE FROM memories WHERE id=$id", ("$id", memoryId));
            Touch(scope, storeId);
            return new DeletedResource { Id = memoryId, Type = "memory_deleted" };
        }, ct);
    }

    // versions

    public Page<MemoryVersion> ListVersions(Caller caller, string storeId, PageQuery page, string view, string? memoryId, string? operation, string? sessionId)
    {
        var (limit, after) = page;
        return core.Read(sql =>
        {
            GetStore(sql, storeId);
            Attachment(sql, caller, storeId, write: false);
            var rows = sql.Query("""
                SELECT seq, json FROM memory_versions WHERE store_id=$s AND ($after IS NULL OR seq < $after)
                  AND ($m IS NULL OR memory_id=$m) AND ($o IS NULL OR json_extract(json,'$.operation')=$o)
                  AND ($sid IS NULL OR json_extract(json,'$.created_by.session_id')=$sid)
                ORDER BY seq DESC LIMIT $n
                """,
                r => (r.GetInt64(0), ShapeVersion(Store.Deserialize(r.GetString(1), J.MemoryVersion), view == MemoryValues.ViewFull)),
                ("$s", storeId), ("$after", after), ("$m", memoryId), ("$o", operation), ("$sid", sessionId), ("$n", limit + 1));
            return Paging.ToPage(rows, limit);
        });
    }

    public MemoryVersion GetVersion(Caller caller, string storeId, string versionId, string view)
    {
        return core.Read(sql =>
        {
            GetStore(sql, storeId);
            Attachment(sql, caller, storeId, write: false);
            var version = sql.One("SELECT json FROM memory_versions WHERE store_id=$s AND id=$id",
                r => Store.Deserialize(r.GetString(0), J.MemoryVersion), ("$s", storeId), ("$id", versionId))
                ?? throw ApiException.NotFound($"memory version {versionId} not found in memory store {storeId}");
            return ShapeVersion(version, view == MemoryValues.ViewFull);
        });
    }

    /// <summary>
    /// Redacts a version, as <c>memoryVersions.redact</c> calls it: its <c>content</c>, <c>path</c>,
    /// <c>content_sha256</c> and <c>content_size_bytes</c> become null for good, <c>redacted_at</c> and
    /// <c>redacted_by</c> say when and by whom; reading it still answers 200. Decisions where the SDK is silent: the API
    /// key alone may redact (a sessions token gets 403: an agent must not erase the history of what it wrote); redacting
    /// again answers the redacted version unchanged; a memory's current version is refused with 409 (its content is
    /// the memory's own: change or delete the memory first, then redact the old version).
    /// </summary>
    public async Task<MemoryVersion> RedactVersionAsync(Caller caller, string storeId, string versionId, CancellationToken ct)
    {
        caller.RequireApiKey("redact memory versions");
        return await core.WriteAsync(scope =>
        {
            GetStore(scope.Sql, storeId);
            var version = scope.Sql.One("SELECT json FROM memory_versions WHERE store_id=$s AND id=$id",
                r => Store.Deserialize(r.GetString(0), J.MemoryVersion), ("$s", storeId), ("$id", versionId))
                ?? throw ApiException.NotFound($"memory version {versionId} not found in memory store {storeId}");
            if (version.RedactedAt is not null)
            {
                return version;
            }

            if (scope.Sql.One("SELECT id FROM memories WHERE store_id=$s AND version_id=$v", r => r.GetString(0), ("$s", storeId), ("$v", versionId)) is { } memoryId)
            {
                throw ApiException.Conflict($"memory version {versionId} is the current content of memory {memoryId}; update or delete the memory first, then redact this version");
            }

            version.Content = null;
            version.Path = null;
            version.ContentSha256 = null;
            version.ContentSizeBytes = null;
            version.RedactedAt = scope.NowText;
            version.RedactedBy = new MemoryActor { Type = "api_actor", ApiKeyId = ApiKeyActorId };
            scope.Sql.Exec("UPDATE memory_versions SET json=$j WHERE id=$id", ("$id", versionId), ("$j", Store.Serialize(version, J.MemoryVersion)));
            return version;
        }, ct);
    }

    // session attachment

    /// <summary>
    /// Resolves a session's <c>memory_store</c> resource at creation: the store must exist and not be archived; the
    /// resource gets the store's name and description (snapshotted), its <c>access</c> (default <c>read_write</c>) and
    /// the output-only <c>mount_path</c> derived from the name under <see cref="ControlPlaneOptions.MemoryMountRoot"/>.
    /// </summary>
    internal JsonElement ResolveResource(Sql sql, JsonBody resource, HashSet<string> mountPaths, HashSet<string> storeIds)
    {
        var storeId = resource.RequireString("memory_store_id");
        var store = Store.Deserialize(
            sql.Scalar<string>("SELECT json FROM memory_stores WHERE id=$id", ("$id", storeId))
                ?? throw ApiException.Invalid($"{resource.Path("memory_store_id")}: memory store {storeId} not found"),
            J.MemoryStore);
        if (store.ArchivedAt is not null)
        {
            throw ApiException.Invalid($"{resource.Path("memory_store_id")}: memory store {storeId} is archived");
        }

        if (!storeIds.Add(storeId))
        {
            throw ApiException.Invalid($"{resource.Path("memory_store_id")}: memory store {storeId} is attached twice");
        }

        var root = core.Options.MemoryMountRoot.TrimEnd('/');
        var slug = MemoryPaths.Slug(store.Name);
        var mount = $"{root}/{slug}";
        for (var n = 2; !mountPaths.Add(mount); n++)
        {
            mount = $"{root}/{slug}-{n}";
        }

        var node = new System.Text.Json.Nodes.JsonObject
        {
            ["type"] = "memory_store",
            ["memory_store_id"] = storeId,
            ["access"] = resource.OptionalString("access") ?? "read_write",
            ["instructions"] = resource.OptionalString("instructions"),
            ["name"] = store.Name,
            ["description"] = store.Description,
            ["mount_path"] = mount,
        };
        using var doc = JsonDocument.Parse(node.ToJsonString());
        return doc.RootElement.Clone();
    }

    // helpers

    private static MemoryStore GetStore(Sql sql, string storeId) =>
        sql.One("SELECT json FROM memory_stores WHERE id=$id", r => Store.Deserialize(r.GetString(0), J.MemoryStore), ("$id", storeId))
        ?? throw ApiException.NotFound($"memory store {storeId} not found");

    private static MemoryStore GetWritableStore(Sql sql, Caller caller, string storeId)
    {
        var store = GetStore(sql, storeId);
        Attachment(sql, caller, storeId, write: true);
        if (store.ArchivedAt is not null)
        {
            throw ApiException.Invalid($"memory store {storeId} is archived; its memories are read-only");
        }

        return store;
    }

    /// <summary>The credential rules: the API key may do anything; a sessions token reaches only its session's stores, and writes only read_write ones.</summary>
    private static void Attachment(Sql sql, Caller caller, string storeId, bool write)
    {
        switch (caller.Kind)
        {
            case CallerKind.ApiKey:
                return;
            case CallerKind.EnvironmentKey:
                throw ApiException.Forbidden("The memory store endpoints do not accept an environment key; use the work item's sessions token (from its secret) or the API key.");
        }

        var session = Store.GetSession(sql, caller.SessionId!)?.Session
            ?? throw ApiException.Forbidden($"This sessions token's session {caller.SessionId} no longer exists.");
        string? access = null;
        var attached = false;
        foreach (var resource in session.Resources)
        {
            if (resource.ValueKind == JsonValueKind.Object
                && resource.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "memory_store"
                && resource.TryGetProperty("memory_store_id", out var id) && id.ValueKind == JsonValueKind.String && id.GetString() == storeId)
            {
                attached = true;
                access = resource.TryGetProperty("access", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString() : "read_write";
            }
        }

        if (!attached)
        {
            throw ApiException.Forbidden($"This sessions token is valid only for the memory stores attached to session {caller.SessionId}; {storeId} is not one of them.");
        }

        if (write && access == "read_only")
        {
            throw ApiException.Forbidden($"Memory store {storeId} is attached to session {caller.SessionId} read_only; its memories cannot be changed with this sessions token.");
        }
    }

    private static void CheckPathFree(Sql sql, string storeId, string path, string? exceptId)
    {
        // Same path, or an ancestor/descendant of it: /notes blocks /notes/todo.md and the other way round.
        var rows = sql.Query("SELECT id, path FROM memories WHERE store_id=$s AND (path=$p OR substr(path,1,length($p)+1)=$p||'/' OR substr($p,1,length(path)+1)=path||'/')",
            r => (Id: r.GetString(0), Path: r.GetString(1)), ("$s", storeId), ("$p", path));
        foreach (var (id, other) in rows)
        {
            if (id == exceptId)
            {
                continue;
            }

            throw new ApiException(409, MemoryValues.PathConflictError,
                other == path
                    ? $"path: {path} is already used by memory {id}; update that memory instead, or rename or delete it first"
                    : $"path: {path} overlaps {other} (memory {id}): one path cannot be an ancestor of another",
                shouldRetry: false)
            {
                PathConflict = (other, id),
            };
        }
    }

    private static void CheckSha(string field, string sha)
    {
        if (sha.Length != 64 || !sha.All(c => c is (>= '0' and <= '9') or (>= 'a' and <= 'f')))
        {
            throw ApiException.Invalid($"{field}: must be 64 lowercase hexadecimal characters");
        }
    }

    private static Memory? ReadMemory(Sql sql, string storeId, string memoryId, bool full) =>
        sql.One("SELECT id, store_id, path, content, sha, size, version_id, created_at, updated_at FROM memories WHERE store_id=$s AND id=$id",
            r => ReadRow(r, full), ("$s", storeId), ("$id", memoryId));

    private static Memory ReadRow(SqliteDataReader r, bool full) => new()
    {
        Id = r.GetString(0),
        MemoryStoreId = r.GetString(1),
        Path = r.GetString(2),
        Content = full ? r.GetString(3) : null,
        ContentSha256 = r.GetString(4),
        ContentSizeBytes = r.GetInt64(5),
        MemoryVersionId = r.GetString(6),
        CreatedAt = r.GetString(7),
        UpdatedAt = r.GetString(8),
    };

    private static Memory Shape(Memory memory, bool full)
    {
        if (!full)
        {
            memory.Content = null;
        }

        return memory;
    }

    private static MemoryVersion ShapeVersion(MemoryVersion version, bool full)
    {
        if (!full)
        {
            version.Content = null;
        }

        return version;
    }

    private static string RecordVersion(WriteScope scope, Caller caller, string storeId, string memoryId, string operation, string path, string? content)
    {
        var version = new MemoryVersion
        {
            Id = Ids.New("memver"),
            MemoryId = memoryId,
            MemoryStoreId = storeId,
            Operation = operation,
            Path = path,
            Content = content,
            ContentSha256 = content is null ? null : Sha256(content),
            ContentSizeBytes = content is null ? null : Encoding.UTF8.GetByteCount(content),
            CreatedBy = caller.Kind == CallerKind.SessionsToken
                ? new MemoryActor { Type = "session_actor", SessionId = caller.SessionId }
                : new MemoryActor { Type = "api_actor", ApiKeyId = ApiKeyActorId },
            CreatedAt = scope.NowText,
        };
        scope.Sql.Exec("INSERT INTO memory_versions(id,store_id,memory_id,json) VALUES($id,$s,$m,$j)",
            ("$id", version.Id), ("$s", storeId), ("$m", memoryId), ("$j", Store.Serialize(version, J.MemoryVersion)));
        return version.Id;
    }

    private static void Touch(WriteScope scope, string storeId) =>
        scope.Sql.Exec("UPDATE memory_stores SET json=json_set(json,'$.updated_at',$t) WHERE id=$id", ("$id", storeId), ("$t", scope.NowText));

    private static void PutStore(Sql sql, MemoryStore store) =>
        sql.Exec("INSERT INTO memory_stores(id,archived,json) VALUES($id,$a,$j) ON CONFLICT(id) DO UPDATE SET archived=excluded.archived, json=excluded.json",
            ("$id", store.Id), ("$a", store.ArchivedAt is null ? 0 : 1), ("$j", Store.Serialize(store, J.MemoryStore)));

    private static ApiException MemoryNotFound(string storeId, string memoryId) =>
        ApiException.NotFound($"memory {memoryId} not found in memory store {storeId}");

    /// <summary>Lowercase hex SHA-256 of the UTF-8 bytes, no normalization.</summary>
    public static string Sha256(string content) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(content)));
}
