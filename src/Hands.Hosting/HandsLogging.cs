using Microsoft.Extensions.Logging;

namespace Hands.Hosting;

/// <summary>
/// The console logging every Hands server and the orchestrator share: one line per entry, or JSON lines with
/// <c>HANDS_LOG_FORMAT=json</c>; each entry logged under a span carries that span's trace and span ids (as a scope:
/// <c>TraceId</c>, <c>SpanId</c>, <c>ParentId</c>), so a log line leads to its trace. What is logged never holds a key,
/// token or secret (each component's rule); this adds only ids.
/// </summary>
public static class HandsLogging
{
    /// <summary>Whether <c>HANDS_LOG_FORMAT</c> asks for JSON lines.</summary>
    public static bool Json => string.Equals(Environment.GetEnvironmentVariable("HANDS_LOG_FORMAT")?.Trim(), "json", StringComparison.OrdinalIgnoreCase);

    /// <summary>Adds the console provider with trace correlation; <paramref name="timestamps"/> false for a control plane's bare lines.</summary>
    public static ILoggingBuilder AddHandsConsole(this ILoggingBuilder builder, bool timestamps = true)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Configure(o => o.ActivityTrackingOptions = ActivityTrackingOptions.TraceId | ActivityTrackingOptions.SpanId | ActivityTrackingOptions.ParentId);
        if (Json)
        {
            return builder.AddJsonConsole(o =>
            {
                o.IncludeScopes = true;
                o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                o.UseUtcTimestamp = true;
            });
        }

        return builder.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = true;
            if (timestamps)
            {
                o.TimestampFormat = "HH:mm:ss ";
            }
        });
    }
}
