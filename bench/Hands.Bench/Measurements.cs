using System.Diagnostics;
using System.Globalization;

namespace Hands.Bench;

/// <summary>Samples of one measured operation, reported as p50/p95 (nearest rank).</summary>
internal sealed class Measurements(string name)
{
    private readonly List<double> _ms = [];

    public string Name { get; } = name;
    public int Count => _ms.Count;

    public void Add(TimeSpan elapsed) => _ms.Add(elapsed.TotalMilliseconds);

    public void Add(long startTimestamp) => Add(Stopwatch.GetElapsedTime(startTimestamp));

    /// <summary>Adds every sample of <paramref name="other"/> (runs of the same operation, interleaved with another variant's).</summary>
    public void Add(Measurements other) => _ms.AddRange(other._ms);

    public double Percentile(double p)
    {
        if (_ms.Count == 0)
        {
            return double.NaN;
        }

        var sorted = _ms.Order().ToList();
        var rank = (int)Math.Ceiling(p / 100 * sorted.Count) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Count - 1)];
    }

    public string Row(string target = "") => string.Create(CultureInfo.InvariantCulture,
        $"| {Name} | {Count} | {Percentile(50):0.00} | {Percentile(95):0.00} | {target} |");
}
