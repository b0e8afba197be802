using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network;

/// <summary>
/// The engine's side of a forwarder process (<see cref="HostPortForwarder"/>): keeps the set of slots whose forwards
/// are open and, on every change, sends the forwarder the whole state (slots and each one's allow-lists, read from the
/// store at that moment), starting the forwarder when none answers. A second connection that carries nothing tells the
/// engine at once when the forwarder dies, and a new one is started with the same state.
/// </summary>
/// <param name="command">The forwarder's argv (the engine's own binary with <c>engine forwarder --data DIR</c>).</param>
/// <param name="dataDirectory">The engine's data directory, which names the forwarder.</param>
/// <param name="ports">The host ports forwarded.</param>
/// <param name="routesOf">A sandbox's allow-list (by slot) for a port, or null for an unfiltered pipe.</param>
/// <param name="time">The clock the restart back-off waits on.</param>
/// <param name="logger">Where starts, losses and restarts of the forwarder are noted.</param>
internal sealed class DetachedHostPortForwards(IReadOnlyList<string> command, string dataDirectory, IReadOnlyList<int> ports,
    Func<int, int, IReadOnlyCollection<string>?> routesOf, TimeProvider time, ILogger logger) : IHostPortForwarding
{
    /// <summary>How long a starting forwarder has to print its ready line (a guard against a hung start, not a measurement).</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly ForwarderPaths _paths = new(dataDirectory);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly HashSet<int> _slots = [];
    private readonly CancellationTokenSource _stopping = new();
    private Socket? _control;
    private StreamReader? _reader;
    private StreamWriter? _writer;
    private Socket? _watch;
    private Task _watching = Task.CompletedTask;

    public IReadOnlyList<int> Ports => ports;

    public async Task OpenAsync(NetworkSlot slot, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _slots.Add(slot.Index);
            var reply = await SyncLockedAsync(cancellationToken).ConfigureAwait(false);
            if (reply.Failed.TryGetValue(slot.Index, out var why))
            {
                _slots.Remove(slot.Index);
                await SyncLockedAsync(cancellationToken).ConfigureAwait(false);
                throw new EngineException(500, $"the host-port forwards of network slot {slot.Index} could not listen: {why}");
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task OpenAllAsync(IReadOnlyCollection<NetworkSlot> slots, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _slots.UnionWith(slots.Select(slot => slot.Index));
            LogFailures(await SyncLockedAsync(cancellationToken).ConfigureAwait(false));
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task CloseAsync(NetworkSlot slot)
    {
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            _slots.Remove(slot.Index);
            await SyncLockedAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task RoutesChangedAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await SyncLockedAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<IReadOnlyCollection<int>> BusySlotsAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_slots.Count == 0)
            {
                return [];
            }

            return (await SendLockedAsync(new ForwarderRequest { Type = "busy" }, cancellationToken).ConfigureAwait(false)).Busy;
        }
        catch (Exception ex) when (ex is IOException or SocketException or EngineException)
        {
            // Not knowing is not a reason to suspend anything: the idle pass treats every forwarded slot as busy.
            logger.LogWarning("could not ask the host-port forwarder which sandboxes are connected: {Error}", ex.Message);
            return [.. _slots];
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task StopAsync(int sandboxesAlive)
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _gate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (sandboxesAlive == 0 && (_writer is not null || ForwarderRuns()))
            {
                // Nothing left to serve: the forwarder goes with the engine.
                try
                {
                    await SendLockedAsync(new ForwarderRequest { Type = "exit" }, CancellationToken.None).ConfigureAwait(false);
                    logger.LogInformation("host-port forwarder stopped (no sandbox left)");
                }
                catch (Exception ex) when (ex is IOException or SocketException)
                {
                    // Already gone.
                }
            }
            else if (_writer is not null)
            {
                logger.LogInformation("host-port forwarder left running for {Count} sandboxes; the next engine start connects to it", sandboxesAlive);
            }

            Disconnect();
        }
        finally
        {
            _gate.Release();
        }

        await _watching.ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await _stopping.CancelAsync().ConfigureAwait(false);
            await _gate.WaitAsync().ConfigureAwait(false);
            Disconnect();
            _gate.Release();
            await _watching.ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    /// <summary>Sends the whole state; with no slot to serve and no forwarder running, starts none.</summary>
    private async Task<ForwarderReply> SyncLockedAsync(CancellationToken cancellationToken)
    {
        if (_slots.Count == 0 && _writer is null && !ForwarderRuns())
        {
            return new ForwarderReply { Ok = true };
        }

        return await SendLockedAsync(SyncRequest(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Slots a sync could not open, logged rather than thrown where no single caller asked for them.</summary>
    private void LogFailures(ForwarderReply reply)
    {
        foreach (var (slot, why) in reply.Failed)
        {
            logger.LogError("network slot {Slot}: host-port forwards could not listen: {Error}", slot, why);
        }
    }

    private ForwarderRequest SyncRequest() => new()
    {
        Type = "sync",
        Ports = ports,
        Slots = _slots.ToDictionary(slot => slot, slot => ports.ToDictionary(port => port, port => routesOf(slot, port)?.ToList())),
    };

    /// <summary>One request and its reply; a lost connection is made again once (starting a forwarder if none answers).</summary>
    private async Task<ForwarderReply> SendLockedAsync(ForwarderRequest request, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                if (await EnsureConnectedLockedAsync(cancellationToken).ConfigureAwait(false) && request.Type != "sync")
                {
                    // A forwarder just connected to may be a new one that knows nothing yet: it gets the state first.
                    LogFailures(await ExchangeLockedAsync(SyncRequest(), cancellationToken).ConfigureAwait(false));
                }

                return await ExchangeLockedAsync(request, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (attempt == 0 && request.Type != "exit" && ex is IOException or SocketException or JsonException)
            {
                logger.LogWarning("host-port forwarder connection lost ({Error}); reconnecting", ex.Message);
                Disconnect();
            }
        }
    }

    private async Task<ForwarderReply> ExchangeLockedAsync(ForwarderRequest request, CancellationToken cancellationToken)
    {
        await _writer!.WriteLineAsync(JsonSerializer.Serialize(request, ForwarderJson.Default.ForwarderRequest).AsMemory(), cancellationToken).ConfigureAwait(false);
        var line = await _reader!.ReadLineAsync(cancellationToken).ConfigureAwait(false)
            ?? throw new IOException("the forwarder closed the connection");
        return JsonSerializer.Deserialize(line, ForwarderJson.Default.ForwarderReply) ?? throw new IOException("the forwarder sent an empty reply");
    }

    /// <summary>Connects (starting a forwarder when none answers); true when this call made a new connection.</summary>
    private async Task<bool> EnsureConnectedLockedAsync(CancellationToken cancellationToken)
    {
        if (_writer is not null)
        {
            return false;
        }

        var control = TryConnect();
        if (control is null)
        {
            await StartForwarderAsync(cancellationToken).ConfigureAwait(false);
            control = TryConnect() ?? throw new EngineException(500, $"the host-port forwarder started but does not answer on {_paths.Socket}; see {_paths.LogFile}");
        }

        var stream = new NetworkStream(control, ownsSocket: true);
        _control = control;
        _reader = new StreamReader(stream, Encoding.UTF8);
        _writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
        if (!_stopping.IsCancellationRequested && TryConnect() is { } watch)
        {
            _watch = watch;
            _watching = WatchAsync(watch);
        }

        return true;
    }

    private bool ForwarderRuns()
    {
        using var probe = TryConnect();
        return probe is not null;
    }

    private Socket? TryConnect()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(_paths.Socket));
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    /// <summary>Starts <c>hands engine forwarder</c> and waits for its ready line; it outlives this process.</summary>
    private async Task StartForwarderAsync(CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            // Not the engine's stderr either: the forwarder outlives the engine, and a copy of that stream (the engine
            // unit's journal stream, a test's pipe) held by the forwarder would keep it open after the engine is gone.
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Least privilege: the engine's key (HANDS_ENGINE_API_KEY) and the rest of its environment are not the forwarder's.
        foreach (var name in start.Environment.Keys.Where(n => n is not ("PATH" or "HOME" or "LANG" or "TMPDIR") && !n.StartsWith("DOTNET_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(name);
        }

        foreach (var argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new EngineException(500, $"could not start the host-port forwarder ({command[0]})");
        process.StandardInput.Close();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(StartTimeout);
        string? line;
        try
        {
            line = await process.StandardOutput.ReadLineAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            line = null;
        }

        if (line is not (HostPortForwarder.ReadyLine or HostPortForwarder.BusyLine))
        {
            throw new EngineException(500, $"the host-port forwarder did not start ({(line is null ? "no ready line" : line)}); see {_paths.LogFile}");
        }

        logger.LogInformation("host-port forwarder {State} (pid {Pid}, log {Log})", line == HostPortForwarder.ReadyLine ? "started" : "found running", process.Id, _paths.LogFile);
    }

    /// <summary>Waits for the forwarder's end (the watch connection closes) and starts a new one with the same state.</summary>
    private async Task WatchAsync(Socket watch)
    {
        var buffer = new byte[1];
        try
        {
            while (await watch.ReceiveAsync(buffer, SocketFlags.None, _stopping.Token).ConfigureAwait(false) > 0)
            {
                // It never sends anything; a byte is ignored.
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            // Closed by either side.
        }

        if (_stopping.IsCancellationRequested)
        {
            return;
        }

        logger.LogWarning("the host-port forwarder exited; starting a new one with the same forwards");
        try
        {
            // A forwarder that dies at once must not be restarted in a tight loop.
            await Task.Delay(TimeSpan.FromSeconds(1), time, _stopping.Token).ConfigureAwait(false);
            await _gate.WaitAsync(_stopping.Token).ConfigureAwait(false);
            try
            {
                if (ReferenceEquals(_watch, watch))
                {
                    Disconnect();
                    var reply = await SyncLockedAsync(_stopping.Token).ConfigureAwait(false);
                    foreach (var (slot, why) in reply.Failed)
                    {
                        logger.LogError("network slot {Slot}: host-port forwards could not listen again: {Error}", slot, why);
                    }
                }
            }
            finally
            {
                _gate.Release();
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
        catch (Exception ex) when (ex is EngineException or IOException or SocketException)
        {
            logger.LogError("could not start the host-port forwarder again: {Error}; the next sandbox change tries again", ex.Message);
        }
    }

    private void Disconnect()
    {
        _reader?.Dispose();
        _writer?.Dispose();
        _control?.Dispose();
        _watch?.Dispose();
        (_reader, _writer, _control, _watch) = (null, null, null, null);
    }
}
