using System.Globalization;

namespace Hands.Protocol.Client;

/// <summary>
/// How a <see cref="ManagedAgentsClient"/> (and the worker built on it) traces, as the official SDKs' <c>openTelemetry</c>
/// option does. By default it is read from the SDKs' environment variables (<see cref="FromEnvironment"/>). The spans
/// go to <see cref="Hands.Common.HandsTelemetry.Source"/>; with nobody listening to it, none are made at all.
/// </summary>
public sealed class ManagedAgentsTracingOptions
{
    /// <summary>The SDKs' default content budget per span, in UTF-8 bytes.</summary>
    public const long DefaultMaxContentBytes = 750_000;

    /// <summary>Whether spans are made (<c>ANTHROPIC_OPEN_TELEMETRY=false</c> turns them off).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether each request carries the trace context of its call span (<c>traceparent</c>, and <c>tracestate</c> when
    /// there is one), on every attempt. <c>ANTHROPIC_OPEN_TELEMETRY_PROPAGATION=false</c> turns it off.
    /// </summary>
    public bool Propagation { get; set; } = true;

    /// <summary>
    /// Whether spans carry content: a tool call's arguments and its result. Off unless the operator opts in with
    /// <c>ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE=content</c>: tool inputs and outputs can hold anything.
    /// </summary>
    public bool RecordContent { get; set; }

    /// <summary>The most content one span carries, in UTF-8 bytes (<c>ANTHROPIC_OPEN_TELEMETRY_TRACES_MAX_CONTENT_BYTES</c>).</summary>
    public long MaxContentBytes { get; set; } = DefaultMaxContentBytes;

    /// <summary>Tracing off: no spans, no trace headers.</summary>
    public static ManagedAgentsTracingOptions Disabled => new() { Enabled = false, Propagation = false };

    /// <summary>
    /// The settings the official SDKs read from the environment, with their rules: <c>false</c> in any case turns
    /// <c>ANTHROPIC_OPEN_TELEMETRY</c> and <c>ANTHROPIC_OPEN_TELEMETRY_PROPAGATION</c> off and anything else leaves them
    /// on; <c>content</c> in any case is the only content mode that records content; the budget takes decimal digits
    /// only, and anything else (or less than 1) is the default.
    /// </summary>
    public static ManagedAgentsTracingOptions FromEnvironment(Func<string, string?>? read = null)
    {
        read ??= Environment.GetEnvironmentVariable;
        return new ManagedAgentsTracingOptions
        {
            Enabled = !IsFalse(read("ANTHROPIC_OPEN_TELEMETRY")),
            Propagation = !IsFalse(read("ANTHROPIC_OPEN_TELEMETRY_PROPAGATION")),
            RecordContent = string.Equals(read("ANTHROPIC_OPEN_TELEMETRY_TRACES_CONTENT_MODE"), "content", StringComparison.OrdinalIgnoreCase),
            MaxContentBytes = ParseBytes(read("ANTHROPIC_OPEN_TELEMETRY_TRACES_MAX_CONTENT_BYTES")),
        };
    }

    private static bool IsFalse(string? value) => string.Equals(value, "false", StringComparison.OrdinalIgnoreCase);

    private static long ParseBytes(string? value)
    {
        // The SDK's rule is /^\d+$/: "1e3", "0x10", " 5" and "-1" are not sizes.
        if (string.IsNullOrEmpty(value) || !value.All(char.IsAsciiDigit))
        {
            return DefaultMaxContentBytes;
        }

        if (!long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var bytes))
        {
            return long.MaxValue; // more digits than a long holds: no practical limit, as in the SDK
        }

        return bytes >= 1 ? bytes : DefaultMaxContentBytes;
    }
}
