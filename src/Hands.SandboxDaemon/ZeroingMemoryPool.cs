using System.Buffers;
using System.Collections.Concurrent;
using Microsoft.AspNetCore.Connections;

namespace Hands.SandboxDaemon;

/// <summary>
/// Kestrel's buffers for the daemon, cleared when Kestrel gives them back. A start request's body carries the
/// process's environment (a worker's work secret, say); Kestrel's own pool keeps returned blocks as they were, so the
/// last request's bytes would sit in the daemon's memory, and in every memory snapshot of it, until reused.
/// </summary>
internal sealed class ZeroingMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new ZeroingMemoryPool();
}

/// <summary>Pinned 4 KiB blocks (Kestrel's size), zeroed on return and reused.</summary>
internal sealed class ZeroingMemoryPool : MemoryPool<byte>
{
    private const int BlockSize = 4096;
    private readonly ConcurrentBag<byte[]> _free = [];

    public override int MaxBufferSize => BlockSize;

    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > BlockSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"blocks are {BlockSize} bytes");
        }

        return new Block(this, _free.TryTake(out var array) ? array : GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true));
    }

    protected override void Dispose(bool disposing) => _free.Clear();

    private void Return(byte[] array)
    {
        Array.Clear(array);
        _free.Add(array);
    }

    private sealed class Block(ZeroingMemoryPool pool, byte[] array) : IMemoryOwner<byte>
    {
        private byte[]? _array = array;

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is { } returned)
            {
                pool.Return(returned);
            }
        }
    }
}
