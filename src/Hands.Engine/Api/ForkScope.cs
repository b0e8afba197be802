using Hands.Engine.Sandboxes;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Api;

/// <summary>
/// What a fork key scoped to sandbox S may do: read S, resume and snapshot S; create sandboxes only from S's
/// snapshots (they become S's children, inheriting S's ports, access setting and network policy); read and delete
/// S's children and S's snapshots; and reach S's and its children's daemons through the ingress. Nothing else: no
/// listing, no other sandbox, no images, no new keys.
/// </summary>
internal static class ForkScope
{
    /// <summary>Null when allowed; otherwise why not (sent with 403).</summary>
    public static string? Check(HttpContext ctx, string scope, SandboxManager sandboxes)
    {
        var method = ctx.Request.Method;
        var (ns, segments) = Split(ctx.Request.Path.Value ?? "");
        var denied = $"this key may only fork sandbox {scope}: {method} {ctx.Request.Path} is not allowed";
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

    /// <summary>True when a scoped caller may reach this sandbox's daemon or ports through the ingress.</summary>
    public static bool MayReach(Storage.SandboxRecord record, string scope) => record.Id == scope || record.ParentId == scope;

    private static bool IsSelfOrChild(SandboxManager sandboxes, string id, string ns, string scope) =>
        Resolve(sandboxes, id, ns) is { } record && MayReach(record, scope);

    private static bool IsChild(SandboxManager sandboxes, string id, string ns, string scope) =>
        Resolve(sandboxes, id, ns)?.ParentId == scope;

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
            return sandboxes.Get(Uri.UnescapeDataString(idOrName), ns);
        }
        catch (EngineException)
        {
            return null;
        }
    }

    private static (string Namespace, string[] Segments) Split(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        return segments is ["v1", "namespaces", var ns, .. var rest] ? (Uri.UnescapeDataString(ns), rest) : ("default", segments);
    }
}
