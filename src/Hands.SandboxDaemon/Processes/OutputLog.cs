namespace Hands.SandboxDaemon.Processes;

/// <summary>
/// The captured lines of one stream, bounded in bytes: a process that floods its output keeps the newest lines and
/// the daemon's memory stays flat. <see cref="DroppedLines"/> says how many of the oldest were let go.
/// </summary>
internal sealed class OutputLog(long capacityBytes)
{
    private readonly Queue<string> _lines = new();
    private long _bytes;

    public long DroppedLines { get; private set; }

    public int Count => _lines.Count;

    public void Append(string line)
    {
        _lines.Enqueue(line);
        _bytes += line.Length + 1;
        while (_bytes > capacityBytes && _lines.Count > 1)
        {
            _bytes -= _lines.Dequeue().Length + 1;
            DroppedLines++;
        }
    }

    public List<string> Snapshot() => [.. _lines];
}
