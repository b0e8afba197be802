using System.Collections.Concurrent;

namespace Hands.ControlPlane.Infrastructure;

/// <summary>
/// Wake-ups by key (a session id for streams, an environment id for long polls). Waiters re-read the database after
/// each wake-up, so a signal carries no data and memory stays bounded however long a stream runs; a key's entry is
/// removed when its last waiter leaves.
/// </summary>
/// <param name="time">The clock a wait's timeout runs on (the control plane's <see cref="ControlPlaneOptions.Time"/>).</param>
public sealed class SignalHub(TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public void Notify(string key)
    {
        if (_entries.TryGetValue(key, out var entry))
        {
            lock (_gate)
            {
                entry.Completion.TrySetResult();
                entry.Completion = NewCompletion();
            }
        }
    }

    /// <summary>Registers a waiter; dispose it when done. <see cref="Waiter.WaitAsync"/> returns at the next notify or the timeout.</summary>
    public Waiter Subscribe(string key)
    {
        lock (_gate)
        {
            var entry = _entries.GetOrAdd(key, _ => new Entry());
            entry.Count++;
            return new Waiter(this, key, entry);
        }
    }

    private void Release(string key, Entry entry)
    {
        lock (_gate)
        {
            if (--entry.Count == 0)
            {
                _entries.TryRemove(new KeyValuePair<string, Entry>(key, entry));
            }
        }
    }

    internal int KeyCount => _entries.Count;

    private static TaskCompletionSource NewCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal sealed class Entry
    {
        public TaskCompletionSource Completion = NewCompletion();
        public int Count;
    }

    /// <summary>A subscription to one key.</summary>
    public sealed class Waiter : IDisposable
    {
        private readonly SignalHub _hub;
        private readonly string _key;
        private readonly Entry _entry;
        private Task _current;
        private bool _disposed;

        internal Waiter(SignalHub hub, string key, Entry entry)
        {
            _hub = hub;
            _key = key;
            _entry = entry;
            _current = entry.Completion.Task;
        }

        /// <summary>Waits for a notify since the last call (or since subscribing); true if one came.</summary>
        public async Task<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken)
        {
            var task = _current;
            if (!task.IsCompleted)
            {
                try
                {
                    await task.WaitAsync(timeout, _hub._time, cancellationToken).ConfigureAwait(false);
                }
                catch (TimeoutException)
                {
                    return false;
                }
            }

            lock (_hub._gate)
            {
                _current = _entry.Completion.Task;
            }

            return true;
        }

        public void Dispose()
        {
            if (!_disposed)
            {
                _disposed = true;
                _hub.Release(_key, _entry);
            }
        }
    }
}
