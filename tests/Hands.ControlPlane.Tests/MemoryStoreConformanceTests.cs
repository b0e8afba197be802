using System.Text.Json;
using Hands.Protocol;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>
/// The official npm SDK (<c>@anthropic-ai/sdk</c> 1.14.0, unmodified) drives the memory store API of the local control
/// plane (tests/conformance/memory-flow.cjs and memory-token.cjs): stores, memories, views, paging, prefixes and depth
/// roll-ups, path rules, content_sha256 preconditions, deletes, versions, session attachment and the credential rules.
/// </summary>
public sealed class MemoryStoreConformanceTests
{
    [Fact]
    public async Task The_official_sdk_drives_memory_stores()
    {
        var mountRoot = Path.Combine(Path.GetTempPath(), "hands-mnt-memory");
        await using var cp = await TestControlPlane.StartAsync(o => o.MemoryMountRoot = mountRoot);
        var baseUrl = cp.BaseAddress.ToString().TrimEnd('/');
        var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("memory-flow.cjs", new()
        {
            ["HANDS_BASE_URL"] = baseUrl,
            ["HANDS_API_KEY"] = TestControlPlane.ApiKey,
        }, TimeSpan.FromSeconds(120));
        Assert.True(exit == 0, stderr);
        var r = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;

        Assert.Equal("memstore_", r.GetProperty("store").GetProperty("idPrefix").GetString());
        Assert.Equal("memory_store", r.GetProperty("store").GetProperty("type").GetString());
        Assert.Equal("User Preferences", r.GetProperty("retrieved").GetString());
        Assert.Equal("updated", r.GetProperty("updated").GetProperty("description").GetString());
        Assert.Equal("""{"owner":"b"}""", r.GetProperty("updated").GetProperty("metadata").GetRawText());
        Assert.True(r.GetProperty("listedStores").GetBoolean());

        var created = r.GetProperty("created");
        Assert.Equal("mem_", created.GetProperty("idPrefix").GetString());
        Assert.Equal("memory", created.GetProperty("type").GetString());
        Assert.Equal("/prefs/food.md", created.GetProperty("path").GetString());
        Assert.Equal(JsonValueKind.Null, created.GetProperty("content").ValueKind); // create answers in the basic view
        Assert.True(created.GetProperty("shaMatches").GetBoolean());
        Assert.Equal(9, created.GetProperty("size").GetInt32());
        Assert.Equal("memver_", created.GetProperty("versionPrefix").GetString());

        Assert.Equal(28, r.GetProperty("basic").GetProperty("count").GetInt32());
        Assert.True(r.GetProperty("basic").GetProperty("contentNull").GetBoolean());
        Assert.True(r.GetProperty("basic").GetProperty("sorted").GetBoolean());
        Assert.Equal(20, r.GetProperty("fullPageSize").GetInt32()); // a full page holds at most 20, whatever the limit
        Assert.True(r.GetProperty("fullHasContent").GetBoolean());
        Assert.Equal(28, r.GetProperty("fullCount").GetInt32());
        Assert.True(r.GetProperty("pagedSame").GetBoolean());

        Assert.Equal(["memory_prefix:/notes/", "memory_prefix:/prefs/", "memory:/top.md"],
            r.GetProperty("depth1").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(26, r.GetProperty("notesDepth1").GetProperty("count").GetInt32()); // 25 notes + the deep/ roll-up
        Assert.Equal(["memory_prefix:/notes/deep/"], r.GetProperty("notesDepth1").GetProperty("prefixes").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["/prefs/food.md"], r.GetProperty("prefixed").EnumerateArray().Select(e => e.GetString()));

        Assert.Equal("likes tea", r.GetProperty("retrieveContent").GetString());
        Assert.True(r.GetProperty("update").GetProperty("sha").GetBoolean());
        Assert.True(r.GetProperty("update").GetProperty("newVersion").GetBoolean());
        Assert.Equal(409, r.GetProperty("staleUpdate").GetProperty("status").GetInt32());
        Assert.Equal("memory_precondition_failed_error", r.GetProperty("staleUpdate").GetProperty("type").GetString());
        Assert.Equal(200, r.GetProperty("repeatedUpdate").GetProperty("status").GetInt32());
        Assert.Equal("/prefs/drinks.md", r.GetProperty("renamed").GetProperty("path").GetString());
        Assert.True(r.GetProperty("renamed").GetProperty("sameId").GetBoolean());

        Assert.Equal(409, r.GetProperty("duplicatePath").GetProperty("status").GetInt32());
        Assert.Equal("memory_path_conflict_error", r.GetProperty("duplicatePath").GetProperty("type").GetString());
        Assert.Equal("/prefs/drinks.md", r.GetProperty("duplicatePath").GetProperty("conflictingPath").GetString());
        Assert.Equal("memory_path_conflict_error", r.GetProperty("overlappingPath").GetProperty("type").GetString());
        foreach (var bad in r.GetProperty("badPaths").EnumerateObject())
        {
            Assert.True(bad.Value.GetInt32() == 400, $"path {bad.Name}: {bad.Value}");
        }

        Assert.Equal(8, r.GetProperty("badPaths").EnumerateObject().Count());
        Assert.Equal(400, r.GetProperty("tooLarge").GetInt32());
        Assert.Equal(200, r.GetProperty("maxSize").GetInt32());

        Assert.Equal(409, r.GetProperty("staleDelete").GetProperty("status").GetInt32());
        Assert.Equal("memory_deleted", r.GetProperty("deleted").GetProperty("type").GetString());
        Assert.Equal(404, r.GetProperty("deleteAgain").GetProperty("status").GetInt32());
        Assert.Equal(404, r.GetProperty("retrieveDeleted").GetProperty("status").GetInt32());

        Assert.Equal(["modified:/prefs/drinks.md:api_actor", "modified:/prefs/food.md:api_actor", "created:/prefs/food.md:api_actor"],
            r.GetProperty("versions").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("likes tea", r.GetProperty("firstVersionContent").GetString());
        var redact = r.GetProperty("redact");
        Assert.True(redact.GetProperty("nulls").GetBoolean());
        Assert.Equal("api_actor", redact.GetProperty("by").GetString());
        Assert.True(redact.GetProperty("at").GetBoolean());
        Assert.True(redact.GetProperty("rereadNull").GetBoolean());
        Assert.True(redact.GetProperty("again").GetBoolean());
        Assert.Equal((409, 404), (redact.GetProperty("current").GetInt32(), redact.GetProperty("unknown").GetInt32()));

        var resources = r.GetProperty("sessionResources").EnumerateArray().ToList();
        Assert.Equal("read_write", resources[0].GetProperty("access").GetString());
        Assert.Equal("User Preferences", resources[0].GetProperty("name").GetString());
        Assert.Equal(mountRoot + "/user-preferences", resources[0].GetProperty("mount_path").GetString());
        Assert.Equal("updated", resources[0].GetProperty("description").GetString());
        Assert.Equal("keep notes", resources[0].GetProperty("instructions").GetString());
        Assert.Equal("read_only", resources[1].GetProperty("access").GetString());
        Assert.Equal(mountRoot + "/other", resources[1].GetProperty("mount_path").GetString());
        Assert.Equal(400, r.GetProperty("unknownStore").GetInt32());

        Assert.False(r.GetProperty("archivedList").GetBoolean());
        Assert.True(r.GetProperty("archivedListAll").GetBoolean());
        Assert.Equal("memory_store_deleted", r.GetProperty("deleteStore").GetProperty("type").GetString());
        Assert.Equal(404, r.GetProperty("retrieveDeletedStore").GetInt32());

        // The session's work item: its sessions token reaches the attached stores only, and writes the read_write one only.
        var environmentId = r.GetProperty("environmentId").GetString()!;
        var key = (await cp.App.Environments.CreateKeyAsync(environmentId)).Key;
        var item = (await cp.Worker(key).Work.PollAsync(environmentId, 500))!;
        var token = WorkSecretCodec.TryDecode(item.Secret)!.SessionsToken!;
        var foreign = await cp.App.MemoryStores.CreateAsync(new() { Name = "foreign" });
        var readOnly = await cp.App.MemoryStores.CreateAsync(new() { Name = "ro" });
        // The "other" store was deleted above; the read_only attachment is checked through a second session.
        var tokenRun = await RunTokenAsync(baseUrl, token, r.GetProperty("storeId").GetString()!, r.GetProperty("otherStoreId").GetString()!, foreign.Id);
        Assert.Equal(200, tokenRun.GetProperty("listAttached").GetInt32());
        Assert.Equal(200, tokenRun.GetProperty("createAttached").GetInt32());
        Assert.Equal(404, tokenRun.GetProperty("listReadOnly").GetInt32()); // deleted store
        Assert.Equal(403, tokenRun.GetProperty("listForeign").GetInt32());
        Assert.Equal(403, tokenRun.GetProperty("createStore").GetInt32());
        Assert.Equal(403, tokenRun.GetProperty("redactAttached").GetInt32()); // an agent may not erase its store's history

        var agent = await cp.CreateAgentAsync("scripted:hello");
        var session2 = await cp.App.Sessions.CreateAsync(new()
        {
            Agent = JsonSerializer.SerializeToElement(agent.Id, Hands.Protocol.Json.ProtocolJsonContext.Default.String),
            EnvironmentId = environmentId,
            Resources = [TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{readOnly.Id}}","access":"read_only"}""")],
        });
        var item2 = (await cp.Worker(key).Work.PollAsync(environmentId, 500))!;
        var token2 = WorkSecretCodec.TryDecode(item2.Secret)!.SessionsToken!;
        var readOnlyRun = await RunTokenAsync(baseUrl, token2, readOnly.Id, readOnly.Id, r.GetProperty("storeId").GetString()!);
        Assert.Equal(200, readOnlyRun.GetProperty("listReadOnly").GetInt32());
        Assert.Equal(403, readOnlyRun.GetProperty("createReadOnly").GetInt32());
        Assert.Equal(403, readOnlyRun.GetProperty("listForeign").GetInt32()); // the first session's store
        Assert.NotNull(session2);

        // The environment key is refused by the memory endpoints, even for an attached store.
        var envRun = await RunTokenAsync(baseUrl, key, r.GetProperty("storeId").GetString()!, readOnly.Id, foreign.Id);
        Assert.Equal(403, envRun.GetProperty("listAttached").GetInt32());
        Assert.Equal(403, envRun.GetProperty("createAttached").GetInt32());
    }

    private static async Task<JsonElement> RunTokenAsync(string baseUrl, string token, string store, string readOnlyStore, string foreignStore)
    {
        var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("memory-token.cjs", new()
        {
            ["HANDS_BASE_URL"] = baseUrl,
            ["HANDS_TOKEN"] = token,
            ["HANDS_STORE_ID"] = store,
            ["HANDS_READONLY_STORE_ID"] = readOnlyStore,
            ["HANDS_FOREIGN_STORE_ID"] = foreignStore,
        }, TimeSpan.FromSeconds(60));
        Assert.True(exit == 0, stderr);
        return JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement.Clone();
    }
}
