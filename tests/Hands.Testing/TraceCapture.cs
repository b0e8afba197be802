using System.Collections;
using System.Diagnostics;
using System.Text;
using Hands.Common;
using OpenTelemetry;
using OpenTelemetry.Trace;

namespace Hands.Testing;

/// <summary>
/// Captures Hands' spans with the OpenTelemetry SDK and its in-memory exporter, the way an operator's collector would
/// receive them. Tests run in parallel in one process and every tracer provider sees every span, so each capture
/// starts a root span of its own (the current activity of the test from here on) and <see cref="Spans"/> keeps only
/// the spans of that trace.
/// </summary>
public sealed class TraceCapture : IDisposable
{
    private static readonly ActivitySource TestSource = new("Hands.Tests");
    private readonly LockedList _exported = new();
    private readonly TracerProvider _provider;

    public TraceCapture()
    {
        _provider = Sdk.CreateTracerProviderBuilder()
            .AddSource(HandsTelemetry.SourceName, TestSource.Name)
            .SetSampler(new AlwaysOnSampler())
            .AddInMemoryExporter(_exported)
            .Build();
        Root = TestSource.StartActivity("test root", ActivityKind.Internal)
            ?? throw new InvalidOperationException("the test source has no listener");
    }

    /// <summary>The test's root span: spans made under it (or with it as their explicit parent) are this test's.</summary>
    public Activity Root { get; }

    /// <summary>The finished Hands spans of this test's trace, in the order they ended.</summary>
    public IReadOnlyList<Activity> Spans => _exported.Snapshot()
        .Where(a => a.TraceId == Root.TraceId && a.Source.Name == HandsTelemetry.SourceName)
        .ToList();

    /// <summary>The finished spans named <paramref name="name"/>.</summary>
    public IReadOnlyList<Activity> Named(string name) => Spans.Where(s => s.DisplayName == name).ToList();

    /// <summary>Everything an exporter would send of this trace's spans, as text: for asserting what is never in it.</summary>
    public string Dump()
    {
        var text = new StringBuilder();
        foreach (var span in Spans)
        {
            text.Append(span.DisplayName).Append(' ').Append(span.Kind).Append(' ').Append(span.Status).Append(' ').AppendLine(span.StatusDescription);
            foreach (var (key, value) in span.TagObjects)
            {
                text.Append("  ").Append(key).Append('=').AppendLine(value?.ToString());
            }

            foreach (var e in span.Events)
            {
                text.Append("  event ").AppendLine(e.Name);
                foreach (var (key, value) in e.Tags)
                {
                    text.Append("    ").Append(key).Append('=').AppendLine(value?.ToString());
                }
            }

            foreach (var (key, value) in span.Baggage)
            {
                text.Append("  baggage ").Append(key).Append('=').AppendLine(value);
            }

            text.Append("  tracestate ").AppendLine(span.TraceStateString);
        }

        return text.ToString();
    }

    /// <summary>The value of <paramref name="key"/> on <paramref name="span"/>, or null.</summary>
    public static object? Tag(Activity span, string key) => span.GetTagItem(key);

    public void Dispose()
    {
        Root.Stop();
        _provider.Dispose();
    }

    /// <summary>The exporter appends from whichever thread ended a span; tests read while the worker still runs.</summary>
    private sealed class LockedList : ICollection<Activity>
    {
        private readonly List<Activity> _items = [];

        public int Count
        {
            get
            {
                lock (_items)
                {
                    return _items.Count;
                }
            }
        }

        public bool IsReadOnly => false;

        public List<Activity> Snapshot()
        {
            lock (_items)
            {
                return [.. _items];
            }
        }

        public void Add(Activity item)
        {
            lock (_items)
            {
                _items.Add(item);
            }
        }

        public void Clear()
        {
            lock (_items)
            {
                _items.Clear();
            }
        }

        public bool Contains(Activity item)
        {
            lock (_items)
            {
                return _items.Contains(item);
            }
        }

        public void CopyTo(Activity[] array, int arrayIndex)
        {
            lock (_items)
            {
                _items.CopyTo(array, arrayIndex);
            }
        }

        public bool Remove(Activity item)
        {
            lock (_items)
            {
                return _items.Remove(item);
            }
        }

        public IEnumerator<Activity> GetEnumerator() => Snapshot().GetEnumerator();

        IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
    }
}
