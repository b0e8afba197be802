using System.Globalization;
using System.Text;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// How long each step of a boot or a wake took (root, network, runc or CRIU, quarantine, daemon), for the log line
/// that says the sandbox runs: what a create, a fork or a wake spends its time on, without a profiler.
/// </summary>
internal sealed class BootPhases(TimeProvider time)
{
    private readonly StringBuilder _text = new();
    private long _last = time.GetTimestamp();
    private readonly long _start = time.GetTimestamp();

    public void Mark(string phase)
    {
        var now = time.GetTimestamp();
        _text.Append(CultureInfo.InvariantCulture, $"{phase} {time.GetElapsedTime(_last, now).TotalMilliseconds:0} ms, ");
        _last = now;
    }

    /// <summary>
    /// Ends a phase made of steps that ran at the same time: each step's own duration is recorded (what it would cost
    /// alone) and the phase's wall-clock time is what the boot waited.
    /// </summary>
    public void MarkConcurrent(params (string Step, TimeSpan Took)[] steps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        var now = time.GetTimestamp();
        foreach (var (step, took) in steps)
        {
            _text.Append(CultureInfo.InvariantCulture, $"{step} {took.TotalMilliseconds:0} ms, ");
        }

        _text.Append(CultureInfo.InvariantCulture, $"(at once: {time.GetElapsedTime(_last, now).TotalMilliseconds:0} ms), ");
        _last = now;
    }

    /// <summary>Runs <paramref name="step"/> and answers how long it took.</summary>
    public async Task<TimeSpan> TimeAsync(Func<Task> step)
    {
        ArgumentNullException.ThrowIfNull(step);
        var start = time.GetTimestamp();
        await step().ConfigureAwait(false);
        return time.GetElapsedTime(start);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{_text}total {time.GetElapsedTime(_start).TotalMilliseconds:0} ms");
}
