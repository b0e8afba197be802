using System.Text.Json;
using Hands.ControlPlane.Auth;
using Hands.ControlPlane.Infrastructure;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Sessions;

/// <summary>
/// <c>/v1/sessions/{id}/resources</c>, as the official SDK's <c>sessions.resources</c> calls it. A session on a
/// self-hosted environment (the only kind this control plane runs) holds <c>memory_store</c> resources alone, which
/// the listing returns; they carry no resource <c>id</c> (the SDK's model has none), so the per-resource routes, made
/// for <c>file</c> and <c>github_repository</c> resources, find nothing (404), and adding a file is refused with the
/// same 400 as at creation.
/// </summary>
public sealed partial class SessionService
{
    /// <summary>The session's resources in attachment order, paged by position.</summary>
    public Page<JsonElement> ListResources(Caller caller, string sessionId, PageQuery page)
    {
        var resources = Get(caller, sessionId).Resources ?? [];
        var start = (int)Math.Min(page.After is { } after ? after + 1 : 0, resources.Count);
        var rows = resources.Select((r, i) => ((long)i, r)).Skip(start).Take(page.Limit + 1).ToList();
        return Paging.ToPage(rows, page.Limit);
    }

    /// <summary>
    /// <c>GET</c>, <c>POST</c> (update) or <c>DELETE</c> of the resource <paramref name="resourceId"/>: after the
    /// session's own checks (404 unknown session, 403 another session's token), always 404, since none of a self-hosted
    /// session's resources has an id.
    /// </summary>
    public JsonElement ResourceById(Caller caller, string sessionId, string resourceId)
    {
        _ = Get(caller, sessionId);
        throw ApiException.NotFound($"resource {resourceId} not found in session {sessionId}");
    }

    /// <summary>Adding a resource to a running session: files only, which a self-hosted environment does not take.</summary>
    public JsonElement AddResource(Caller caller, string sessionId)
    {
        var session = Get(caller, sessionId);
        var env = core.Read(sql => Store.GetEnvironment(sql, session.EnvironmentId));
        if (env is { IsSelfHosted: true })
        {
            throw ApiException.Invalid($"{env.Id} is a self-hosted environment. `resources` are not supported with self-hosted environments.");
        }

        throw ApiException.Invalid("only self-hosted environments run on this control plane");
    }
}
