using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Hands.Common;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Hands.Hosting;

/// <summary>
/// Hands' instruments (the <c>Hands</c> meter) in the Prometheus text exposition format (0.0.4), for operators without
/// a collector: <c>GET /metrics</c>. A <see cref="MeterListener"/> of the process aggregates from the moment the first
/// endpoint is mapped: counters as <c>_total</c> sums, up-down counters and observable gauges as gauges (observed at
/// scrape time), histograms as cumulative <c>_bucket</c>/<c>_sum</c>/<c>_count</c> series on fixed bounds in the
/// instrument's unit. Names are the instruments' with dots as underscores (<c>hands.engine.operation.duration</c> in
/// seconds is <c>hands_engine_operation_duration_seconds</c>); attribute keys likewise. Written here rather than with
/// OpenTelemetry's Prometheus exporter, which is published only as a beta, and so that the libraries keep depending
/// on no OpenTelemetry package (docs/observability.md).
/// </summary>
public static class PrometheusMetrics
{
    /// <summary>Bucket bounds (seconds) for duration histograms: from a 1 ms freeze to a multi-minute image build.</summary>
    private static readonly double[] Bounds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private static readonly object Gate = new();
    private static readonly ConcurrentDictionary<Instrument, Series> Instruments = new();
    private static MeterListener? _listener;

    /// <summary>Maps <c>GET /metrics</c>, starting the process's listener if it is not listening yet.</summary>
    public static IEndpointConventionBuilder MapPrometheusMetrics(this IEndpointRouteBuilder endpoints, string path = "/metrics")
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        EnsureListening();
        return endpoints.MapGet(path, static context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return context.Response.WriteAsync(Scrape());
        });
    }

    /// <summary>Starts aggregating the <c>Hands</c> meter's instruments (idempotent).</summary>
    public static void EnsureListening()
    {
        lock (Gate)
        {
            if (_listener is not null)
            {
                return;
            }

            var listener = new MeterListener
            {
                InstrumentPublished = static (instrument, l) =>
                {
                    if (instrument.Meter.Name == HandsTelemetry.SourceName)
                    {
                        Instruments.TryAdd(instrument, new Series(instrument));
                        l.EnableMeasurementEvents(instrument);
                    }
                },
                MeasurementsCompleted = static (instrument, _) => Instruments.TryRemove(instrument, out Series? _),
            };
            listener.SetMeasurementEventCallback<long>(static (i, v, tags, _) => Record(i, v, tags));
            listener.SetMeasurementEventCallback<int>(static (i, v, tags, _) => Record(i, v, tags));
            listener.SetMeasurementEventCallback<double>(static (i, v, tags, _) => Record(i, v, tags));
            listener.Start();
            _listener = listener;
        }
    }

    private static void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (Instruments.TryGetValue(instrument, out var series))
        {
            series.Record(value, tags);
        }
    }

    /// <summary>The current values of every instrument, as Prometheus text.</summary>
    public static string Scrape()
    {
        EnsureListening();
        lock (Gate)
        {
            // Observable instruments report now; the gauges keep only this scrape's observations.
            foreach (var series in Instruments.Values.Where(s => s.Observable))
            {
                series.Clear();
            }

            _listener!.RecordObservableInstruments();
        }

        var text = new StringBuilder();
        foreach (var series in Instruments.Values.OrderBy(s => s.Name, StringComparer.Ordinal))
        {
            series.Write(text);
        }

        return text.ToString();
    }

    private static string Sanitize(string name)
    {
        var builder = new StringBuilder(name.Length);
        foreach (var c in name)
        {
            builder.Append(char.IsAsciiLetterOrDigit(c) || c == '_' ? c : '_');
        }

        return builder.ToString();
    }

    private static string Escape(string value) => value.Replace("\\", "\\\\", StringComparison.Ordinal)
        .Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Number(double value) => double.IsPositiveInfinity(value) ? "+Inf" : value.ToString("R", CultureInfo.InvariantCulture);

    private sealed class Series(Instrument instrument)
    {
        private readonly Dictionary<string, Point> _points = new(StringComparer.Ordinal);

        public string Name { get; } = Sanitize(instrument.Name) + instrument.Unit switch
        {
            "s" => "_seconds",
            "By" => "_bytes",
            _ => "",
        };

        public bool Observable => instrument.IsObservable;

        private string Kind => instrument switch
        {
            Counter<long> or Counter<int> or Counter<double> or ObservableCounter<long> or ObservableCounter<int> or ObservableCounter<double> => "counter",
            Histogram<long> or Histogram<int> or Histogram<double> => "histogram",
            _ => "gauge",
        };

        public void Clear()
        {
            lock (_points)
            {
                _points.Clear();
            }
        }

        public void Record(double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = Labels(tags);
            lock (_points)
            {
                if (!_points.TryGetValue(labels, out var point))
                {
                    point = new Point(Kind == "histogram" ? new long[Bounds.Length + 1] : null);
                    _points[labels] = point;
                }

                switch (Kind)
                {
                    case "histogram":
                        point.Count++;
                        point.Sum += value;
                        var bucket = Array.FindIndex(Bounds, b => value <= b);
                        point.Buckets![bucket < 0 ? Bounds.Length : bucket]++;
                        break;
                    case "counter" when !instrument.IsObservable:
                        point.Sum += value;
                        break;
                    case "gauge" when !instrument.IsObservable:
                        point.Sum += value; // an up-down counter
                        break;
                    default:
                        point.Sum = value; // an observation
                        break;
                }
            }
        }

        public void Write(StringBuilder text)
        {
            lock (_points)
            {
                var kind = Kind;
                var name = kind == "counter" ? Name + "_total" : Name;
                if (instrument.Description is { Length: > 0 } help)
                {
                    text.Append("# HELP ").Append(name).Append(' ').AppendLine(help.Replace("\n", " ", StringComparison.Ordinal));
                }

                text.Append("# TYPE ").Append(name).Append(' ').AppendLine(kind);
                foreach (var (labels, point) in _points.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    if (kind != "histogram")
                    {
                        text.Append(name).Append(Braces(labels)).Append(' ').AppendLine(Number(point.Sum));
                        continue;
                    }

                    long cumulative = 0;
                    for (var i = 0; i <= Bounds.Length; i++)
                    {
                        cumulative += point.Buckets![i];
                        var le = $"le=\"{Number(i < Bounds.Length ? Bounds[i] : double.PositiveInfinity)}\"";
                        text.Append(Name).Append("_bucket{").Append(labels.Length == 0 ? le : labels + "," + le).Append("} ")
                            .AppendLine(cumulative.ToString(CultureInfo.InvariantCulture));
                    }

                    text.Append(Name).Append("_sum").Append(Braces(labels)).Append(' ').AppendLine(Number(point.Sum));
                    text.Append(Name).Append("_count").Append(Braces(labels)).Append(' ').AppendLine(point.Count.ToString(CultureInfo.InvariantCulture));
                }
            }
        }

        private static string Braces(string labels) => labels.Length == 0 ? "" : "{" + labels + "}";

        private static string Labels(ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var pairs = new List<(string Key, string Value)>(tags.Length);
            foreach (var (key, value) in tags)
            {
                if (value is not null)
                {
                    pairs.Add((Sanitize(key), value is bool b ? (b ? "true" : "false") : Convert.ToString(value, CultureInfo.InvariantCulture) ?? ""));
                }
            }

            pairs.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
            return string.Join(',', pairs.Select(p => $"{p.Key}=\"{Escape(p.Value)}\""));
        }
    }

    private sealed class Point(long[]? buckets)
    {
        public double Sum;
        public long Count;
        public long[]? Buckets = buckets;
    }
}
