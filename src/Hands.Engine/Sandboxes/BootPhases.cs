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

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{_text}total {time.GetElapsedTime(_start).TotalMilliseconds:0} ms");
}
