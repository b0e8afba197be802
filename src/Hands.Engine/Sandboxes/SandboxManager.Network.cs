using Hands.Engine.Network.Telemetry;
using Hands.Engine.Storage;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Sandboxes;

/// <summary>The network telemetry of the sandboxes (<see cref="NetworkTelemetry"/>): collected while they live, kept after.</summary>
internal sealed partial class SandboxManager
{
    private readonly NetworkTelemetry _network = new(Path.Combine(options.DataDirectory, "engine.db"), options.TimeProvider, options.NetworkTelemetryInterval, logger);

    public NetworkTelemetry NetworkTelemetry => _network;

    /// <summary>Collects one sandbox's namespace now if it has one; throws only when <paramref name="cancellationToken"/> is cancelled.</summary>
    public async Task CollectNetworkAsync(SandboxRecord record, CancellationToken cancellationToken)
    {
        if (!record.IsAlive || record.Slot <= 0)
        {
            return;
        }

        try
        {
            await _network.CollectAsync(record, PathsOf(record.Id).NetworkNamespace, SlotOf(record).SandboxAddress, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // CollectAsync records its own failures as gaps; this is the last guard so that no telemetry failure aborts a
            // pass, a read or a PATCH network (which collects before applying the new policy).
            logger.LogWarning("network telemetry of {Id}: {Error}", record.Id, ex.Message);
        }
    }

    /// <summary>One pass over every live sandbox (the engine's telemetry loop), then the retention.</summary>
    public async Task CollectAllNetworkAsync(CancellationToken cancellationToken)
    {
        var alive = AllAlive();
        foreach (var record in alive)
        {
            await CollectNetworkAsync(record, cancellationToken).ConfigureAwait(false);
        }

        _network.Prune(alive.Select(r => r.Id));
    }

    /// <summary>The last collection before a sandbox's namespace is removed, so nothing it did is lost.</summary>
    private async Task CollectNetworkBeforeTearDownAsync(SandboxRecord record)
    {
        if (record.Slot <= 0)
        {
            return;
        }

        await CollectNetworkAsync(record, CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>The namespace is gone: connections still tracked end with the counters last seen.</summary>
    private async Task EndNetworkCaptureAsync(SandboxRecord record)
    {
        if (record.Slot <= 0)
        {
            return;
        }

        try
        {
            await _network.EndCaptureAsync(record).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The namespace is already gone: a telemetry failure must not fail the deletion.
            logger.LogWarning("network telemetry of {Id}: {Error}", record.Id, ex.Message);
        }
    }
}
