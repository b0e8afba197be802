using Hands.Engine.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>
/// What a fork key scoped to sandbox S may do while S lives: read S, resume and snapshot S; create sandboxes only from
/// S's snapshots (they become the key's children, inheriting S's ports, access setting, network policy, resources and
/// idle timeout); read and delete those children and S's snapshots; and reach S's and those children's daemons through
/// the ingress. Nothing else: no listing, no other sandbox (not even one made from S's snapshot with another key), no
/// images, no new keys. Once S is terminated, only deleting the key's children is left.
/// </summary>
internal static class ForkScope
{
    /// <summary>Null when allowed; otherwise why not (sent with 403).</summary>
    public static string? Check(HttpContext ctx, string scope, SandboxManager sandboxes)
    {
        var method = ctx.Request.Method;
        var (ns, segments) = Split(ctx.Request.Path.Value ?? "");
        var denied = $"this key may only fork sandbox {scope}: {method} {ctx.Request.Path} is not allowed";
        if (sandboxes.FindAlive(scope) is null)
        {
            // The key dies with its sandbox; only the clean-up of the children it made is still allowed.
            return segments is ["sandboxes", var child] && HttpMethods.IsDelete(method) && IsChild(sandboxes, child, ns, scope)
                ? null
                : $"this key was scoped to sandbox {scope}, which is terminated";
        }

        switch (segments)
        {
            case ["healthz"] or ["v1", "engine"] when HttpMethods.IsGet(method):
                return null;
            case ["sandboxes"] when HttpMethods.IsPost(method):
                return null; // the create handler checks that the snapshot is the scope's
            case ["sandboxes", var id] when HttpMethods.IsGet(method):
                return IsSelfOrChild(sandboxes, id, ns, scope) ? null : denied;
            case ["sandboxes", var id] when HttpMethods.IsDelete(method):
                return IsChild(sandboxes, id, ns, scope) ? null : denied;
            case ["sandboxes", var id, "snapshot" or "resume"] when HttpMethods.IsPost(method):
                return Resolve(sandboxes, id, ns)?.Id == scope ? null : denied;
            case ["snapshots", var id] when HttpMethods.IsGet(method) || HttpMethods.IsDelete(method):
                return OwnsSnapshot(sandboxes, id, ns, scope) ? null : denied;
            default:
                return denied;
        }
    }

    /// <summary>True when a scoped caller may create from <paramref name="snapshotId"/> (a snapshot of the scope).</summary>
    public static bool MayRestore(SandboxManager sandboxes, string? snapshotId, string ns, string scope) =>
        snapshotId is not null && OwnsSnapshot(sandboxes, snapshotId, ns, scope);

    /// <summary>True when a scoped caller may reach this sandbox's daemon or ports: the scope itself or a child its key made.</summary>
    public static bool MayReach(Storage.SandboxRecord record, string scope) => record.Id == scope || record.ForkedBy == scope;

    private static bool IsSelfOrChild(SandboxManager sandboxes, string id, string ns, string scope) =>
        Resolve(sandboxes, id, ns) is { } record && MayReach(record, scope);

    private static bool IsChild(SandboxManager sandboxes, string id, string ns, string scope) =>
        Resolve(sandboxes, id, ns)?.ForkedBy == scope;

    private static bool OwnsSnapshot(SandboxManager sandboxes, string id, string ns, string scope)
    {
        try
        {
            return sandboxes.GetSnapshot(id, ns).SandboxId == scope;
        }
        catch (EngineException)
        {
            return false;
        }
    }

    private static Storage.SandboxRecord? Resolve(SandboxManager sandboxes, string idOrName, string ns)
    {
        try
        {
            return sandboxes.Get(idOrName, ns);
        }
        catch (EngineException)
        {
            return null;
        }
    }

    private static (string Namespace, string[] Segments) Split(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        // Request.Path is already decoded, as the route values the handlers read are.
        return segments is ["v1", "namespaces", var ns, .. var rest] ? (ns, rest) : ("default", segments);
    }
}
