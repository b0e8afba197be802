namespace Hands.Engine.Network;

/// <summary>
/// The host-port forwards of every sandbox (<see cref="HostPortForwards"/>), as the engine drives them: in its own
/// process (<see cref="HostPortForwards"/>, when the engine is embedded in a larger process) or in a forwarder process of
/// their own that outlives the engine (<see cref="DetachedHostPortForwards"/>, <c>hands engine</c>'s default), so a
/// worker keeps reaching the control plane while the engine restarts.
/// </summary>
internal interface IHostPortForwarding : IAsyncDisposable
{
    /// <summary>The host ports forwarded.</summary>
    IReadOnlyList<int> Ports { get; }

    /// <summary>Starts the slot's listeners (idempotent); the gateway address must already be configured.</summary>
    Task OpenAsync(NetworkSlot slot, CancellationToken cancellationToken);

    /// <summary>
    /// Starts the listeners of every slot in <paramref name="slots"/> at once (idempotent), as one state: an engine that
    /// restarts re-adopts all its running sandboxes together, so that a forwarder process that outlived it is never told
    /// a partial set (it would close the other sandboxes' listeners and cut their connections). Failures are logged,
    /// not thrown: one slot that cannot listen must not keep the others from being served.
    /// </summary>
    Task OpenAllAsync(IReadOnlyCollection<NetworkSlot> slots, CancellationToken cancellationToken);

    /// <summary>Stops the slot's listeners and ends their connections; done when it returns, so the slot may be reused.</summary>
    Task CloseAsync(NetworkSlot slot);

    /// <summary>A sandbox's HTTP allow-list changed: the next connection must see the new one.</summary>
    Task RoutesChangedAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The slots with a connection open through their forwards right now, for the idle clock. Forwards in the engine's
    /// process hold the clock themselves and answer none; a forwarder process is asked.
    /// </summary>
    Task<IReadOnlyCollection<int>> BusySlotsAsync(CancellationToken cancellationToken);

    /// <summary>
    /// The engine stops with <paramref name="sandboxesAlive"/> sandboxes still running: forwards in the engine's process
    /// end with it; a forwarder process stays for running sandboxes and is told to exit when none is left.
    /// </summary>
    Task StopAsync(int sandboxesAlive);
}
