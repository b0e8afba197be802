namespace Hands.Sandboxes.Concurrency;

/// <summary>
/// One async mutex per key, held only while someone holds or waits for it: the table never grows past the keys in
/// use, so a long-running engine or orchestrator does not keep a semaphore for every sandbox it ever saw.
/// </summary>
/// <typeparam name="TKey">The key type (a sandbox id or name).</typeparam>
public sealed class KeyedLock<TKey> where TKey : notnull
{
    private readonly Dictionary<TKey, Entry> _entries;

    /// <summary>A table comparing keys with <paramref name="comparer"/> (the default comparer when null).</summary>
    public KeyedLock(IEqualityComparer<TKey>? comparer = null) => _entries = new Dictionary<TKey, Entry>(comparer);

    /// <summary>How many keys are held or waited for now.</summary>
    public int Count
    {
        get
        {
            lock (_entries)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>Waits for the key's lock; dispose the answer to release it.</summary>
    public async ValueTask<Releaser> AcquireAsync(TKey key, CancellationToken cancellationToken)
    {
        Entry entry;
        lock (_entries)
        {
            if (!_entries.TryGetValue(key, out entry!))
            {
                entry = new Entry();
                _entries[key] = entry;
            }

            entry.Users++;
        }

        try
        {
            await entry.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Leave(key, entry);
            throw;
        }

        return new Releaser(this, key, entry);
    }

    private void Leave(TKey key, Entry entry)
    {
        lock (_entries)
        {
            if (--entry.Users == 0)
            {
                _entries.Remove(key);
                entry.Gate.Dispose();
            }
        }
    }

    internal sealed class Entry
    {
        public SemaphoreSlim Gate { get; } = new(1, 1);

        public int Users { get; set; }
    }

    /// <summary>Holds one key's lock until disposed; disposing twice releases once.</summary>
    public struct Releaser : IDisposable
    {
        private readonly KeyedLock<TKey> _owner;
        private readonly TKey _key;
        private Entry? _entry;

        internal Releaser(KeyedLock<TKey> owner, TKey key, Entry entry)
        {
            _owner = owner;
            _key = key;
            _entry = entry;
        }

        /// <summary>Releases the lock and forgets the key when nobody else wants it.</summary>
        public void Dispose()
        {
            if (_entry is { } entry)
            {
                _entry = null;
                entry.Gate.Release();
                _owner.Leave(_key, entry);
            }
        }
    }
}
