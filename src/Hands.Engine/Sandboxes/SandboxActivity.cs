using System.Collections.Concurrent;

namespace Hands.Engine.Sandboxes;

/// <summary>
/// Inbound proxied traffic per sandbox: the idle clock. Decision (the reference's main open question): every request
/// the ingress forwards (management API and user ports) resets it, an open proxied connection (a stream, a WebSocket,
/// a relay) holds it, and so does an open connection through the sandbox's host-port forwards (the engine's extension
/// that carries a session worker's traffic to the control plane: a sandbox is not suspended under an attached worker,
/// whose calls may run for longer than the timeout with no inbound traffic at all). Nothing else counts: lifecycle
/// calls and the sandbox's other outbound traffic do not.
/// </summary>
/// <param name="time">The engine's clock (<see cref="EngineOptions.TimeProvider"/>), monotonic timestamps.</param>
internal sealed class SandboxActivity(TimeProvider time)
{
    private sealed class Entry(long now)
    {
        public long LastTicks = now;
        public int Open;
    }

    private readonly ConcurrentDictionary<string, Entry> _entries = new();

    public void Touch(string id) => Volatile.Write(ref _entries.GetOrAdd(id, _ => new Entry(time.GetTimestamp())).LastTicks, time.GetTimestamp());

    /// <summary>Marks a proxied exchange open until the returned handle is disposed.</summary>
    public IDisposable Open(string id)
    {
        var entry = _entries.GetOrAdd(id, _ => new Entry(time.GetTimestamp()));
        Interlocked.Increment(ref entry.Open);
        Volatile.Write(ref entry.LastTicks, time.GetTimestamp());
        return new Closer(() =>
        {
            Volatile.Write(ref entry.LastTicks, time.GetTimestamp());
            Interlocked.Decrement(ref entry.Open);
        });
    }

    /// <summary>How long the sandbox has been idle; zero while a proxied connection is open.</summary>
    public TimeSpan IdleFor(string id)
    {
        var entry = _entries.GetOrAdd(id, _ => new Entry(time.GetTimestamp()));
        return Volatile.Read(ref entry.Open) > 0 ? TimeSpan.Zero : time.GetElapsedTime(Volatile.Read(ref entry.LastTicks));
    }

    public void Forget(string id) => _entries.TryRemove(id, out _);

    private sealed class Closer(Action close) : IDisposable
    {
        private int _closed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                close();
            }
        }
    }
}
