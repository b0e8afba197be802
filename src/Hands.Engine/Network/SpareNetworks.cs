using System.Collections.Concurrent;
using System.Globalization;
using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network;

/// <summary>
/// Network namespaces made ahead for memory forks, in the engine's <c>netns</c> directory as <c>spare-{slot}</c>: each
/// is a whole sandbox network for a slot reserved to it (<see cref="SandboxNetwork.CreateNamespaceAsync"/> and
/// <see cref="SandboxNetwork.ConfigureAsync"/> with the default egress rules and the host end of its veth down). A fork
/// child takes one with its slot and moves it to its own name by a bind mount, instead of running the network's dozen
/// processes (about 13 % of a fork's CPU) before its CRIU restore, which needs the network in place.
/// <para>
/// A spare holds nothing of any sandbox: its namespace is empty but for its veth, addresses, route and rules, and it is
/// never put back after a sandbox had it. Its host end stays down until the fork that took it is connected, as any
/// fork's does. The refill makes one at a time and starts none while a boot or a wake holds it
/// (<see cref="HoldRefill"/>). Nothing of a spare is recorded: a restart's recovery removes every namespace file and
/// veth of no live sandbox, spares included, and the refill makes new ones; a stop destroys the ready ones
/// (<see cref="DestroyAllAsync"/>).
/// </para>
/// </summary>
internal sealed class SpareNetworks(string directory, int target, string interfacePrefix, IReadOnlyList<int> hostPorts, ILogger logger, TimeProvider time)
{
    /// <summary>The file name prefix of a spare namespace in the <c>netns</c> directory; its slot follows.</summary>
    public const string FilePrefix = "spare-";

    private readonly ConcurrentQueue<int> _ready = new();
    private readonly ConcurrentDictionary<int, byte> _reserved = new();
    private readonly StockRefill _refill = new("spare networks", logger, time);

    /// <summary>How many are ready now.</summary>
    public int Count => _ready.Count;

    /// <summary>Slots spares hold (ready or being made): no sandbox may be given one.</summary>
    public IReadOnlyCollection<int> ReservedSlots => [.. _reserved.Keys];

    /// <summary>Where the spare of <paramref name="slot"/> is (or would be).</summary>
    public string FileOf(int slot) => Path.Combine(directory, FilePrefix + slot.ToString(CultureInfo.InvariantCulture));

    /// <summary>Marks <paramref name="slot"/> as a spare's, under the caller's slot allocation.</summary>
    public void Reserve(int slot) => _reserved[slot] = 0;

    /// <summary>
    /// Hands a ready spare's slot to the fork being created (under the caller's slot allocation, which records the
    /// sandbox with that slot before it lets another allocation run) and asks for a refill; false when none is ready.
    /// </summary>
    public bool TryTake(out int slot)
    {
        try
        {
            while (_ready.TryDequeue(out slot))
            {
                _reserved.TryRemove(slot, out _);
                if (SandboxNetwork.Exists(FileOf(slot)))
                {
                    return true;
                }

                // Unmounted under the engine (by hand): its slot is free again; the veth, if any, goes with the next use.
                logger.LogWarning("spare network {Slot} was gone; skipped", slot);
            }

            slot = 0;
            return false;
        }
        finally
        {
            Wake();
        }
    }

    /// <summary>Whether a boot or a wake holds the refill now.</summary>
    public bool Held => _refill.Held;

    /// <summary>Destroys the spare of <paramref name="slot"/>, taken for a sandbox that was then never recorded; never throws.</summary>
    public async Task DestroyAsync(int slot)
    {
        try
        {
            await SandboxNetwork.DestroyAsync(FileOf(slot), new NetworkSlot(slot, interfacePrefix), CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or EngineCommandException or System.ComponentModel.Win32Exception)
        {
            logger.LogWarning("spare network {Slot} could not be removed (the next start removes it): {Error}", slot, ex.Message);
        }
    }

    /// <summary>Keeps the refill from starting a spare until the returned handle is disposed (a boot under way).</summary>
    public IDisposable HoldRefill() => _refill.Hold();

    /// <summary>Asks the refill to top the stock up.</summary>
    public void Wake()
    {
        if (target > 0)
        {
            _refill.Wake();
        }
    }

    /// <summary>
    /// Refills to the target, reserving each spare's slot through <paramref name="reserveSlot"/> (null: not now, a
    /// create holds the refill), until <paramref name="cancellationToken"/>; a spare under way when it is cancelled is
    /// finished (a few ms of child processes), so none outlives the engine half made. Never throws: a failure is logged
    /// and tried again later.
    /// </summary>
    public Task RunAsync(Func<CancellationToken, Task<int?>> reserveSlot, CancellationToken cancellationToken) =>
        target == 0 ? Task.CompletedTask : _refill.RunAsync(async ct =>
        {
            while (!ct.IsCancellationRequested && !Held && _ready.Count < target && await reserveSlot(ct).ConfigureAwait(false) is { } slot)
            {
                await MakeOneAsync(slot).ConfigureAwait(false);
            }
        }, cancellationToken);

    /// <summary>Destroys every ready spare (the engine stops; the refill has ended); never throws.</summary>
    public async Task DestroyAllAsync()
    {
        while (_ready.TryDequeue(out var slot))
        {
            await DestroyAsync(slot).ConfigureAwait(false);
            _reserved.TryRemove(slot, out _);
        }
    }

    private async Task MakeOneAsync(int slot)
    {
        var network = new NetworkSlot(slot, interfacePrefix);
        try
        {
            // Both remove what they made when their command fails; the destroy below covers any other exception.
            await SandboxNetwork.CreateNamespaceAsync(FileOf(slot), network, CancellationToken.None).ConfigureAwait(false);
            await SandboxNetwork.ConfigureAsync(FileOf(slot), network, policy: null, hostPorts, CancellationToken.None, connect: false).ConfigureAwait(false);
            _ready.Enqueue(slot);
        }
        catch
        {
            await DestroyAsync(slot).ConfigureAwait(false);
            _reserved.TryRemove(slot, out _);
            throw;
        }
    }
}
