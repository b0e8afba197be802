using System.Diagnostics;
using System.Globalization;
using Hands.Common;
using Hands.Hosting;
using Microsoft.AspNetCore.Http;

namespace Hands.Engine.Ingress;

/// <summary>
/// One SERVER span per request through the ingress, continuing the caller's <c>traceparent</c>: the hop between a
/// client of a sandbox (the orchestrator starting a worker, <c>hands sandbox exec</c>, a browser on an exposed port)
/// and the sandbox, including the wake it may cause (the engine's <c>hands.sandbox.resume</c> span is its child).
/// <c>hands-sandboxd</c> itself stays free of the OpenTelemetry SDK (it runs once per sandbox, and a session's memory
/// is budgeted to a few MiB), so its calls are spanned here, where every one of them passes. Named
/// <c>{METHOD} {daemon route}</c> for the daemon's API (ids as <c>{pid}</c>), <c>{METHOD}</c> for a user's port, whose
/// routes the engine does not know; no header, query string or body is recorded.
/// </summary>
internal static class IngressSpan
{
    /// <summary>Starts the span, or answers null when nothing listens to Hands' spans.</summary>
    public static Activity? Start(HttpContext context)
    {
        if (!HandsTelemetry.Source.HasListeners())
        {
            return null;
        }

        // As ServerSpans: under ASP.NET Core's request activity when that is exported, else straight under the caller's.
        ActivityContext parent;
        if (Activity.Current is { } current && current.Source.HasListeners())
        {
            parent = current.Context;
        }
        else
        {
            Activity.Current = null;
            parent = ServerSpans.CallerContext(context.Request.Headers);
        }

        var span = HandsTelemetry.Source.StartActivity(context.Request.Method, ActivityKind.Server, parent);
        span?.SetTag("http.request.method", context.Request.Method);
        span?.SetTag("url.scheme", context.Request.Scheme);
        return span;
    }

    /// <summary>Names the span once the target is known: the sandbox, its port, and for the daemon its route.</summary>
    public static void Target(Activity? span, string sandboxId, int port, string path)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("hands.sandbox.id", sandboxId);
        span.SetTag("hands.sandbox.port", port);
        if (port == IngressTarget.ManagementPort)
        {
            var route = DaemonRoute(path);
            span.DisplayName = $"{span.OperationName} {route}";
            span.SetTag("http.route", route);
        }
    }

    /// <summary>Records that the request found the sandbox suspended and woke it.</summary>
    public static void Woke(Activity? span, string? tier) => span?.SetTag("hands.ingress.woke", tier ?? "unknown");

    /// <summary>Ends with the answer's status; a 5xx (the engine's own, or the sandbox's) is an error.</summary>
    public static void Finish(Activity? span, HttpResponse response)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("http.response.status_code", response.StatusCode);
        if (response.StatusCode >= 500)
        {
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", response.StatusCode.ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// The daemon's route template for <paramref name="path"/>: a process id (<c>/api/v1/processes/{pid}/...</c>)
    /// becomes <c>{pid}</c>, so that spans group by operation, not by process; anything outside <c>/api/v1/</c> is
    /// reported as <c>/</c> plus nothing of the path.
    /// </summary>
    public static string DaemonRoute(string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (segments.Length < 3 || segments[0] != "api" || segments[1] != "v1")
        {
            return "/";
        }

        if (segments[2] == "processes" && segments.Length >= 4 && segments[3] != "run")
        {
            segments[3] = "{pid}";
        }

        return "/" + string.Join('/', segments);
    }
}
