using System.Diagnostics;
using System.Globalization;
using Hands.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hands.Hosting;

/// <summary>
/// One SERVER span per request, from the <c>Hands</c> source, continuing the caller's trace (its
/// <c>traceparent</c>/<c>tracestate</c>, read by the process's <see cref="DistributedContextPropagator"/>), named as
/// OpenTelemetry's HTTP conventions name a server span: <c>{METHOD} {http.route}</c> (the matched route template, e.g.
/// <c>POST /sandboxes/{id}/suspend</c>), or the method alone when no route matched. Attributes:
/// <c>http.request.method</c>, <c>url.scheme</c>, <c>url.path</c>, <c>server.address</c>, <c>server.port</c>,
/// <c>http.route</c>, <c>http.response.status_code</c>; ERROR with <c>error.type</c> (the status code) for a 5xx or an
/// exception. No header, query string or body is recorded. With nobody listening it costs one check per request.
/// Spans the work of a request does (an engine's <c>hands.sandbox.create</c>) are its children.
/// </summary>
public static class ServerSpans
{
    /// <summary>Adds the span middleware; call it first, so the span covers the rest of the pipeline.</summary>
    public static IApplicationBuilder UseServerSpans(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Use(static (context, next) => HandleAsync(context, next));
    }

    private static async Task HandleAsync(HttpContext context, RequestDelegate next)
    {
        if (!HandsTelemetry.Source.HasListeners())
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        var request = context.Request;
        // ASP.NET Core's own request activity continues the caller's trace too, and is the parent when something
        // exports it (its source has listeners). Otherwise it exists only for log scopes and is never exported: a
        // child of it would point at a span no backend has, so the span continues the caller's context directly.
        ActivityContext parent;
        if (Activity.Current is { } current && current.Source.HasListeners())
        {
            parent = current.Context;
        }
        else
        {
            Activity.Current = null;
            parent = CallerContext(request.Headers);
        }

        using var span = HandsTelemetry.Source.StartActivity(request.Method, ActivityKind.Server, parent);
        if (span is null)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        span.SetTag("http.request.method", request.Method);
        span.SetTag("url.scheme", request.Scheme);
        span.SetTag("url.path", request.Path.Value);
        if (request.Host.HasValue)
        {
            span.SetTag("server.address", request.Host.Host);
            if (request.Host.Port is { } port)
            {
                span.SetTag("server.port", port);
            }
        }

        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Name(span, context);
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", ex.GetType().FullName);
            throw;
        }

        Name(span, context);
        var status = context.Response.StatusCode;
        span.SetTag("http.response.status_code", status);
        if (status >= 500)
        {
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", status.ToString(CultureInfo.InvariantCulture));
        }
    }

    private static void Name(Activity span, HttpContext context)
    {
        if (context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { Length: > 0 } route })
        {
            var template = route.StartsWith('/') ? route : "/" + route;
            span.DisplayName = $"{context.Request.Method} {template}";
            span.SetTag("http.route", template);
        }
    }

    /// <summary>The caller's span context from <c>traceparent</c>/<c>tracestate</c>, or default when it sent none.</summary>
    public static ActivityContext CallerContext(IHeaderDictionary headers)
    {
        DistributedContextPropagator.Current.ExtractTraceIdAndState(headers, static (carrier, name, out value, out values) =>
        {
            values = null;
            value = carrier is IHeaderDictionary h && h.TryGetValue(name, out var v) ? v.ToString() : null;
        }, out var traceParent, out var traceState);
        return traceParent is not null && ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }
}
