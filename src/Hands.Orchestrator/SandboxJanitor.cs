using System.Text.Json;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// Sweeps session sandboxes (names starting <c>agent-</c>, nothing else) that will never serve again: stuck in
/// <c>pending</c> (or <c>suspending</c>/<c>snapshotting</c>) for longer than <see cref="StuckAfter"/>, or reported
/// failed. Idle ones are left to the provider's timeout (suspend), which the resume policy then acts on.
/// </summary>
public sealed class SandboxJanitor(TensorlakeClient sandboxes, ILogger logger)
{
    /// <summary>How long a sandbox may sit in a transitional state before it counts as stuck.</summary>
    public TimeSpan StuckAfter { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>One sweep; returns the names removed.</summary>
    public async Task<IReadOnlyList<string>> SweepAsync(CancellationToken cancellationToken)
    {
        var removed = new List<string>();
        await foreach (var sandbox in sandboxes.ListAllAsync(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            if (sandbox.Name is not { } name || !name.StartsWith(SandboxNames.SessionPrefix, StringComparison.Ordinal) || !IsDead(sandbox))
            {
                continue;
            }

            try
            {
                await sandboxes.DeleteAsync(sandbox.Id ?? sandbox.SandboxId ?? name, cancellationToken).ConfigureAwait(false);
                removed.Add(name);
                logger.LogInformation("janitor removed {Name} ({Status})", name, sandbox.Status);
            }
            catch (TensorlakeException ex) when (ex.IsNotFound)
            {
                // Gone meanwhile.
            }
        }

        return removed;
    }

    private bool IsDead(SandboxInfo sandbox)
    {
        if (sandbox.Status == "failed")
        {
            return true;
        }

        return sandbox.Status is SandboxStatus.Pending or SandboxStatus.Suspending or SandboxStatus.Snapshotting
            && CreatedAt(sandbox) is { } created && DateTimeOffset.UtcNow - created > StuckAfter;
    }

    /// <summary><c>created_at</c> as Tensorlake sends it: RFC 3339 text, or Unix seconds or milliseconds.</summary>
    private static DateTimeOffset? CreatedAt(SandboxInfo sandbox) => sandbox.CreatedAtRaw switch
    {
        { ValueKind: JsonValueKind.String } s when DateTimeOffset.TryParse(s.GetString(), System.Globalization.CultureInfo.InvariantCulture, out var t) => t,
        { ValueKind: JsonValueKind.Number } n when n.TryGetInt64(out var v) => v > 100_000_000_000 ? DateTimeOffset.FromUnixTimeMilliseconds(v) : DateTimeOffset.FromUnixTimeSeconds(v),
        _ => null,
    };

    /// <summary>Sweeps in the background every <paramref name="interval"/>; disposing stops the sweeps and waits for the one under way.</summary>
    public IAsyncDisposable Start(TimeSpan interval) => new Running(this, interval);

    private sealed class Running : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _sweeping;

        public Running(SandboxJanitor janitor, TimeSpan interval) => _sweeping = janitor.RunAsync(interval, _stop.Token);

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _sweeping.ConfigureAwait(false);
            _stop.Dispose();
        }
    }

    /// <summary>Sweeps every <paramref name="interval"/> until cancelled; a failed sweep is logged and retried next time.</summary>
    public async Task RunAsync(TimeSpan interval, CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            do
            {
                try
                {
                    await SweepAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TensorlakeException or HttpRequestException)
                {
                    logger.LogWarning("janitor sweep failed: {Error}", ex.Message);
                }
            }
            while (await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
