using System.Diagnostics;
using System.Globalization;
using Hands.Common;

namespace Hands.Sandboxes.Client;

/// <summary>
/// One CLIENT span per Tensorlake call (every retry of it included), from the <c>Hands</c> source: named
/// <c>{METHOD} {url.template}</c> as OpenTelemetry's HTTP conventions name a client span
/// (<c>POST /sandboxes/{sandbox}/suspend</c>), with <c>http.request.method</c>, <c>url.template</c>,
/// <c>server.address</c>, <c>server.port</c>, <c>hands.sandbox.id</c> (the id or name the path names) and, at the end,
/// <c>http.response.status_code</c>, and ERROR with <c>error.type</c> (the status code, or the engine's error code,
/// <c>connection_error</c>, <c>client_timeout_error</c>) when the call failed. Its context is what every attempt sends
/// as <c>traceparent</c>, so the engine's server span continues the caller's trace. No header, query, body or key is
/// recorded. Null (and free) when nobody listens.
/// </summary>
internal static class TensorlakeCallSpan
{
    private static readonly HashSet<string> Collections = new(StringComparer.Ordinal)
    {
        "namespaces", "sandboxes", "snapshots", "sandbox-pools", "processes", "sandbox-templates",
    };

    public static Activity? Start(HttpMethod method, string url)
    {
        if (!HandsTelemetry.Source.HasListeners() || !Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            return null;
        }

        var (template, id) = Template(uri.AbsolutePath);
        var span = HandsTelemetry.Source.StartActivity($"{method.Method} {template}", ActivityKind.Client);
        if (span is null)
        {
            return null;
        }

        span.SetTag("http.request.method", method.Method);
        span.SetTag("url.template", template);
        span.SetTag("server.address", uri.Host);
        span.SetTag("server.port", uri.Port);
        if (id is not null)
        {
            span.SetTag("hands.sandbox.id", id);
        }

        return span;
    }

    /// <summary>The path with each id after a known collection replaced by <c>{name}</c>, and the first such id.</summary>
    internal static (string Template, string? Id) Template(string path)
    {
        var segments = path.Split('/');
        string? id = null;
        for (var i = 1; i < segments.Length; i++)
        {
            if (Collections.Contains(segments[i - 1]) && segments[i].Length > 0 && segments[i] is not ("run" or "list"))
            {
                var placeholder = segments[i - 1] switch
                {
                    "sandboxes" => "{sandbox}",
                    "snapshots" => "{snapshot}",
                    "sandbox-pools" => "{pool}",
                    "processes" => "{process}",
                    "namespaces" => "{namespace}",
                    _ => "{name}",
                };
                if (segments[i - 1] == "sandboxes")
                {
                    id ??= Uri.UnescapeDataString(segments[i]);
                }

                segments[i] = placeholder;
            }
        }

        return (string.Join('/', segments), id);
    }

    public static void Answered(Activity? span, int status, bool failed, string? code)
    {
        if (span is null)
        {
            return;
        }

        span.SetTag("http.response.status_code", status);
        if (failed)
        {
            span.SetStatus(ActivityStatusCode.Error);
            span.SetTag("error.type", code ?? status.ToString(CultureInfo.InvariantCulture));
        }
    }

    public static void Failed(Activity? span, string errorType)
    {
        if (span is null)
        {
            return;
        }

        span.SetStatus(ActivityStatusCode.Error);
        span.SetTag("error.type", errorType);
    }
}
