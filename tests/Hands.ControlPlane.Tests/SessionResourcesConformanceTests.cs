using System.Text.Json;
using Hands.Testing;

namespace Hands.ControlPlane.Tests;

/// <summary>
/// The official npm SDK (unmodified) lists sessions by memory store, agent version and creation time, and calls every
/// <c>sessions.resources</c> method against the local control plane (tests/conformance/session-resources.cjs).
/// </summary>
public sealed class SessionResourcesConformanceTests
{
    [Fact]
    public async Task The_official_sdk_filters_sessions_and_reads_their_resources()
    {
        await using var cp = await TestControlPlane.StartAsync(o => o.MemoryMountRoot = "/mnt/memory");
        var (exit, stdout, stderr) = await OfficialSdkScripts.RunNodeAsync("session-resources.cjs", new()
        {
            ["HANDS_BASE_URL"] = cp.BaseAddress.ToString().TrimEnd('/'),
            ["HANDS_API_KEY"] = TestControlPlane.ApiKey,
        }, TimeSpan.FromSeconds(120));
        Assert.True(exit == 0, stderr);
        var r = JsonDocument.Parse(stdout.Trim().Split('\n')[^1]).RootElement;
        var (plain, withNotes, onVersion2) = (Id(r, "plain"), Id(r, "withNotes"), Id(r, "onVersion2"));

        Assert.Equal(2, r.GetProperty("version2").GetInt32());
        Assert.Equal([withNotes], Ids(r, "byNotes"));
        Assert.Equal([withNotes, onVersion2], Ids(r, "byRules"));
        Assert.Equal([plain, withNotes], Ids(r, "byVersion1"));
        Assert.Equal([onVersion2], Ids(r, "byVersion2"));
        Assert.Equal([withNotes, onVersion2], Ids(r, "createdGte"));
        Assert.Equal([onVersion2], Ids(r, "createdGt"));
        Assert.Equal([plain], Ids(r, "createdLt"));
        Assert.Equal([plain, withNotes], Ids(r, "createdLte"));
        Assert.Equal(400, r.GetProperty("badCreatedAt").GetInt32());

        // Paged one at a time, in attachment order, as the session reports them.
        Assert.Equal(["memory_store:notes:read_write:/mnt/memory/notes", "memory_store:rules:read_only:/mnt/memory/rules"], Ids(r, "resources"));
        Assert.Equal(1, r.GetProperty("firstPage").GetInt32());
        Assert.Equal(0, r.GetProperty("noResources").GetInt32());
        // Memory store resources carry no id; a self-hosted session has no other kind, and takes no file.
        Assert.Equal((404, 404, 404, 400, 404),
            (r.GetProperty("retrieve").GetInt32(), r.GetProperty("update").GetInt32(), r.GetProperty("delete").GetInt32(),
             r.GetProperty("add").GetInt32(), r.GetProperty("unknownSession").GetInt32()));
    }

    [Fact]
    public async Task The_hands_client_filters_by_memory_store_and_creation_time_and_lists_resources()
    {
        await using var cp = await TestControlPlane.StartAsync();
        var (env, _) = await cp.CreateEnvironmentAsync();
        var agent = await cp.CreateAgentAsync();
        var store = await cp.App.MemoryStores.CreateAsync(new() { Name = "Team Notes" });
        var before = await cp.CreateSessionAsync(env.Id, agent.Id);
        var attached = await cp.App.Sessions.CreateAsync(new()
        {
            Agent = JsonSerializer.SerializeToElement(agent.Id, Hands.Protocol.Json.ProtocolJsonContext.Default.String),
            EnvironmentId = env.Id,
            Resources = [TestControlPlane.Json($$"""{"type":"memory_store","memory_store_id":"{{store.Id}}"}""")],
        });

        Assert.Equal([attached.Id], (await cp.App.Sessions.ListAsync(memoryStoreId: store.Id)).Data.Select(s => s.Id));
        var from = DateTimeOffset.Parse(attached.CreatedAt, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal([attached.Id], (await cp.App.Sessions.ListAsync(createdAfter: from)).Data.Select(s => s.Id));
        Assert.Equal([before.Id], (await cp.App.Sessions.ListAsync(createdBefore: from.AddTicks(-10))).Data.Select(s => s.Id));
        var resource = Assert.Single((await cp.App.Sessions.ListResourcesAsync(attached.Id)).Data);
        Assert.Equal("/mnt/memory/team-notes", resource.GetProperty("mount_path").GetString());
        Assert.Empty((await cp.App.Sessions.ListResourcesAsync(before.Id)).Data);
    }

    private static string Id(JsonElement r, string name) => r.GetProperty(name).GetString()!;

    private static List<string> Ids(JsonElement r, string name) => [.. r.GetProperty(name).EnumerateArray().Select(e => e.GetString()!)];
}
