using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;

namespace Hands.Common;

/// <summary>
/// The one <see cref="ActivitySource"/> of Hands' traces (<see cref="SourceName"/>, version <see cref="Version"/>).
/// Span names and attributes follow the official SDKs (<c>anthropic.environments.work.poll</c>,
/// <c>anthropic.environment.work</c>, ...), so a backend shows Hands and the official workers the same way; the scope
/// is Hands' own, because these spans are not emitted by an Anthropic SDK (docs/observability.md). With nobody
/// listening (no OpenTelemetry SDK, no <see cref="ActivityListener"/>), starting a span returns null and costs nothing.
/// </summary>
public static class HandsTelemetry
{
    /// <summary>The instrumentation scope: add it to a tracer provider (<c>AddSource("Hands")</c>) to export the spans.</summary>
    public const string SourceName = "Hands";

    /// <summary><c>gen_ai.provider.name</c> of every span that talks about the Managed Agents API, as the SDKs set it.</summary>
    public const string ProviderName = "anthropic";

    /// <summary>Hands' version (<c>Directory.Build.props</c>), without a source-revision suffix: the scope's version.</summary>
    public static string Version { get; } = ReadVersion();

    /// <summary>The source every Hands span starts from.</summary>
    public static ActivitySource Source { get; } = new(SourceName, Version);

    /// <summary>
    /// The meter every Hands instrument comes from (same name and version as <see cref="Source"/>): add it to a meter
    /// provider (<c>AddMeter("Hands")</c>). With nobody listening, recording a measurement costs one check.
    /// </summary>
    public static Meter Meter { get; } = new(SourceName, Version);

    private static string ReadVersion()
    {
        var informational = typeof(HandsTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        if (string.IsNullOrEmpty(informational))
        {
            return typeof(HandsTelemetry).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
        }

        var plus = informational.IndexOf('+', StringComparison.Ordinal);
        return plus < 0 ? informational : informational[..plus];
    }
}
