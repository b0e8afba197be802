using System.Text.Json.Nodes;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Api;

/// <summary>Engine records as Tensorlake's wire shapes (snake_case; times in ms since the epoch).</summary>
internal sealed class WireMapper(Uri ingressAddress, string ingressEndpoint, string runtimeName)
{
    /// <summary>The proxy every sandbox is reached through (select one with <c>Host: {id}.local</c>).</summary>
    public string SandboxUrl { get; } = ingressAddress.ToString().TrimEnd('/');

    public string IngressEndpoint { get; } = ingressEndpoint;

    private WireMapper? _insideView;

    /// <summary>
    /// The mapper for whoever asks. A caller inside a sandbox reaches the engine as <c>host.hands.internal</c>
    /// (through a host-port forward), so its answers name the ingress by that host too; everyone else gets the
    /// ingress's own address.
    /// </summary>
    public WireMapper ForCaller(Microsoft.AspNetCore.Http.HttpContext context)
    {
        if (!string.Equals(context.Request.Host.Host, Network.HostPortForwards.HostName, StringComparison.OrdinalIgnoreCase))
        {
            return this;
        }

        return _insideView ??= new WireMapper(new UriBuilder(ingressAddress) { Host = Network.HostPortForwards.HostName }.Uri,
            new UriBuilder(IngressEndpoint) { Host = Network.HostPortForwards.HostName }.Uri.ToString().TrimEnd('/'), runtimeName);
    }

    /// <summary><c>SandboxInfo</c>, plus <c>sandbox_id</c> so the same object also reads as a create answer.</summary>
    public JsonObject Sandbox(SandboxRecord record)
    {
        var json = new JsonObject
        {
            ["id"] = record.Id,
            ["sandbox_id"] = record.Id,
            ["namespace"] = record.Namespace,
            ["status"] = record.Status,
            ["image"] = record.Image,
            // Tensorlake names its isolation here (firecracker, gvisor); ours is runc, with or without a user namespace.
            ["runtime"] = runtimeName,
            ["resources"] = new JsonObject
            {
                ["cpus"] = record.Cpus,
                ["memory_mb"] = record.MemoryMb,
                ["ephemeral_disk_mb"] = record.DiskMb,
                ["disk_mb"] = record.DiskMb,
            },
            ["timeout_secs"] = record.TimeoutSecs,
            ["entrypoint"] = record.Entrypoint is null ? null : new JsonArray([.. record.Entrypoint.Select(e => (JsonNode)e)]),
            ["network"] = record.Network is null ? null : JsonSerializerNode(record.Network),
            ["pool_id"] = record.PoolId,
            ["outcome"] = null,
            ["termination_reason"] = record.TerminationReason,
            ["error_details"] = record.ErrorDetails,
            ["created_at"] = record.CreatedAt,
            ["terminated_at"] = record.TerminatedAt,
            ["name"] = record.Name,
            ["routing_hint"] = null,
            ["allow_unauthenticated_access"] = record.AllowUnauthenticatedAccess,
            ["exposed_ports"] = new JsonArray([.. record.ExposedPorts.Select(p => (JsonNode)p)]),
            // Engine extension: the HTTP allow-list per forwarded host port (absent when none).
            ["host_port_routes"] = record.HostPortRoutes is { } routes
                ? new JsonObject(routes.Select(r => KeyValuePair.Create(r.Key, (JsonNode?)new JsonArray([.. r.Value.Select(v => (JsonNode)v)]))))
                : null,
            ["ingress_endpoint"] = IngressEndpoint,
            ["sandbox_url"] = record.IsAlive ? SandboxUrl : null,
            ["file_systems"] = new JsonArray(),
            ["pending_reason"] = null,
            ["template_id"] = null,
            // Engine extensions: where a suspended sandbox is, and the snapshot it came from.
            ["suspend_tier"] = record.SuspendTier,
            ["restored_from_snapshot"] = record.RestoredFromSnapshot,
        };
        return json;
    }

    public static JsonObject Snapshot(SnapshotRecord snapshot) => new()
    {
        ["id"] = snapshot.Id,
        ["snapshot_id"] = snapshot.Id,
        ["namespace"] = snapshot.Namespace,
        ["sandbox_id"] = snapshot.SandboxId,
        ["base_image"] = snapshot.Image,
        ["status"] = snapshot.Status,
        ["snapshot_type"] = snapshot.Type,
        ["error"] = snapshot.Error,
        ["size_bytes"] = snapshot.SizeBytes,
        ["created_at"] = snapshot.CreatedAt,
    };

    /// <summary>
    /// <c>SandboxPoolInfo</c>, with <c>containers</c> when <paramref name="members"/> are given (the single GET). The id
    /// goes out as <c>pool_id</c> alone: the Rust SDK reads <c>id</c> as an alias of it, and serde refuses a struct
    /// that carries the same field twice.
    /// </summary>
    public static JsonObject Pool(PoolRecord pool, IReadOnlyList<SandboxRecord>? members = null)
    {
        var json = new JsonObject
        {
            ["pool_id"] = pool.Id,
            ["namespace"] = pool.Namespace,
            ["image"] = pool.Image,
            ["resources"] = new JsonObject
            {
                ["cpus"] = pool.Cpus,
                ["memory_mb"] = pool.MemoryMb,
                ["ephemeral_disk_mb"] = pool.DiskMb ?? SandboxDisk.DefaultMb,
            },
            ["timeout_secs"] = pool.TimeoutSecs,
            ["entrypoint"] = pool.Entrypoint is null ? null : new JsonArray([.. pool.Entrypoint.Select(e => (JsonNode)e)]),
            ["max_containers"] = pool.MaxContainers,
            ["warm_containers"] = pool.WarmContainers,
            ["network_policy"] = pool.Network is null ? null : JsonSerializerNode(pool.Network),
            ["created_at"] = pool.CreatedAt,
            ["updated_at"] = pool.UpdatedAt,
        };
        if (members is not null)
        {
            json["containers"] = new JsonArray([.. members.Select(m => (JsonNode)new JsonObject
            {
                ["id"] = m.Id,
                ["state"] = ContainerState(m),
                // Null while warm: a container becomes a sandbox when it is claimed (same id here).
                ["sandbox_id"] = m.Warm ? null : m.Id,
                ["executor_id"] = Sandboxes.SandboxManager.LocalExecutor,
            })]);
        }

        return json;
    }

    private static string ContainerState(SandboxRecord member) => (member.Warm, member.Status) switch
    {
        (_, Hands.Sandboxes.Models.SandboxStatus.Pending) => PoolContainerState.Pending,
        (true, _) => PoolContainerState.Idle,
        (false, Hands.Sandboxes.Models.SandboxStatus.Suspended) => PoolContainerState.Suspended,
        (false, Hands.Sandboxes.Models.SandboxStatus.Running) => PoolContainerState.Running,
        // snapshotting, suspending: a claimed sandbox between states; the SDK's state is free text.
        (false, var status) => char.ToUpperInvariant(status[0]) + status[1..],
    };

    private static JsonNode JsonSerializerNode(Hands.Sandboxes.Models.NetworkPolicy policy) => new JsonObject
    {
        ["allow_internet_access"] = policy.AllowInternetAccess,
        ["allow_out"] = new JsonArray([.. policy.AllowOut.Select(a => (JsonNode)a)]),
        ["deny_out"] = new JsonArray([.. policy.DenyOut.Select(a => (JsonNode)a)]),
    };
}
