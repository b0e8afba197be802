using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network;

/// <summary>The forwarder's listeners, made to match each sync: slots opened or closed, allow-lists replaced whole.</summary>
internal sealed class ForwarderState(ILogger logger) : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private HostPortForwards? _forwards;
    private volatile Dictionary<int, Dictionary<int, List<string>?>> _routes = [];
    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, int> _open = new();

    /// <summary>The slots with a connection open now (the engine's idle clock counts them as activity).</summary>
    public IReadOnlyList<int> Busy => [.. _open.Where(kv => kv.Value > 0).Select(kv => kv.Key)];

    public async Task<ForwarderReply> ApplyAsync(ForwarderRequest request)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_forwards is null || !_forwards.Ports.SequenceEqual(request.Ports))
            {
                if (_forwards is not null)
                {
                    await _forwards.DisposeAsync().ConfigureAwait(false);
                }

                _forwards = new HostPortForwards([.. request.Ports], RoutesOf, Hold, logger);
            }

            // The lists first: a slot that stays open sees its new list on its next connection.
            _routes = request.Slots;
            foreach (var gone in _forwards.OpenSlots.Where(s => !request.Slots.ContainsKey(s)).ToList())
            {
                await _forwards.CloseAsync(new NetworkSlot(gone)).ConfigureAwait(false);
                logger.LogInformation("slot {Slot} closed", gone);
            }

            var failed = new Dictionary<int, string>();
            var open = _forwards.OpenSlots.ToHashSet();
            foreach (var slot in request.Slots.Keys.Where(s => !open.Contains(s)))
            {
                try
                {
                    _forwards.Open(new NetworkSlot(slot));
                    logger.LogInformation("slot {Slot} open", slot);
                }
                catch (SocketException ex)
                {
                    failed[slot] = ex.Message;
                    logger.LogWarning("slot {Slot} could not listen: {Error}", slot, ex.Message);
                }
            }

            return new ForwarderReply { Ok = failed.Count == 0, Failed = failed };
        }
        finally
        {
            _gate.Release();
        }
    }

    private Connection Hold(int slot)
    {
        _open.AddOrUpdate(slot, 1, (_, n) => n + 1);
        return new Connection(this, slot);
    }

    private sealed class Connection(ForwarderState state, int slot) : IDisposable
    {
        private int _closed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _closed, 1) == 0)
            {
                state._open.AddOrUpdate(slot, 0, (_, n) => Math.Max(0, n - 1));
            }
        }
    }

    // A slot or port the engine did not list is refused (an empty list), never an open pipe.
    private IReadOnlyCollection<string>? RoutesOf(int slot, int port) =>
        _routes.TryGetValue(slot, out var byPort) && byPort.TryGetValue(port, out var routes) ? routes : [];

    public async ValueTask DisposeAsync()
    {
        if (_forwards is not null)
        {
            await _forwards.DisposeAsync().ConfigureAwait(false);
        }

        _gate.Dispose();
    }
}
