using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Worker.Hosting;

namespace Hands.Worker.Runner;

/// <summary>
/// Keeps a work item's lease: the first heartbeat (<c>NO_HEARTBEAT</c>) goes out before anything else, then one every
/// min(ttl/2, 30 s), each cut off after its interval, echoing the previous <c>last_heartbeat</c>. The lease ends
/// (and <see cref="Ended"/> fires) on <c>stopping</c>/<c>stopped</c>, <c>lease_extended:false</c>, a 412 or another
/// fatal 4xx, or when no beat has succeeded for longer than the TTL. <see cref="Lost"/> says whether someone else may
/// hold the lease now (412, or assumed lost), in which case the worker must not post stop.
/// <para>
/// After a failed beat the next one does not wait a whole interval: it is retried after 0.5 s, 1 s, 2 s, ... but never
/// more than a tenth of the TTL apart (at least 1 s), and no attempt waits for its answer longer than that step (at
/// least 5 s, at most the interval), so a black-holed request cannot use up the lease either. The last try therefore
/// falls within one step of the lease's end wherever an outage begins: the lease survives any outage shorter than
/// the TTL minus the time since the last beat, less one step — at worst (it begins just before a beat) about 0.4 of
/// the TTL, at best nearly all of it. With the interval the official workers use (TTL/2), beating more often is the only
/// way to do better, and is not done: it would double every worker's heartbeat load. Before, retries doubled up to
/// the interval, and the last one inside the lease could come as early as TTL/4 after the failed beat.
/// </para>
/// <para>
/// Decision: a 412 is taken as the lease lost even when it answers a retry of a beat whose answer was lost (the server
/// moved <c>last_heartbeat</c> and the echo is stale). Telling that apart from a successor's beat is not possible from
/// the 412 body, and ending the run is the safe side: the successor answers the call in flight from the journal.
/// </para>
/// </summary>
public sealed class LeaseKeeper(ManagedAgentsClient client, string environmentId, string workId, WorkerLog log, TimeProvider? time = null)
{
    private static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan DefaultTtl = TimeSpan.FromSeconds(90);
    private readonly CancellationTokenSource _ended = new();
    private readonly TaskCompletionSource<bool> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    /// <summary>Cancelled when the lease ends for any reason.</summary>
    public CancellationToken Ended => _ended.Token;

    /// <summary>True when the lease was lost (412 or no success within the TTL): do not post stop.</summary>
    public bool Lost { get; private set; }

    /// <summary>True when the API refused a heartbeat for good (a fatal 4xx other than 412): the worker cannot keep the lease.</summary>
    public bool Rejected { get; private set; }

    /// <summary>The TTL the server reported (90 s until it reports one); also the window for retrying result posts.</summary>
    public TimeSpan Ttl { get; private set; } = DefaultTtl;

    /// <summary>Completes with true after the first successful heartbeat, false if the lease ended first.</summary>
    public Task<bool> FirstBeat => _first.Task;

    public int Beats { get; private set; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var expected = WorkOperations.NoHeartbeat;
        var interval = DefaultInterval;
        var lastSuccess = _time.GetUtcNow();
        var failures = 0;
        using var sleep = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _ended.Token);
        try
        {
            while (!cancellationToken.IsCancellationRequested && !_ended.IsCancellationRequested)
            {
                try
                {
                    var beat = await client.Work.HeartbeatAsync(environmentId, workId, expected, timeout: AttemptTimeout(interval, Ttl),
                        cancellationToken: cancellationToken);
                    lastSuccess = _time.GetUtcNow();
                    failures = 0;
                    Beats++;
                    expected = beat.LastHeartbeat ?? expected;
                    if (beat.TtlSeconds > 0)
                    {
                        Ttl = TimeSpan.FromSeconds(beat.TtlSeconds);
                        interval = TimeSpan.FromMilliseconds(Math.Max(1000, Math.Min(Ttl.TotalMilliseconds / 2, 30_000)));
                    }

                    if (beat.State is WorkState.Stopping or WorkState.Stopped)
                    {
                        log.Info("heartbeat signals shutdown", ("work_id", workId), ("state", beat.State));
                        End(lost: false);
                        break;
                    }

                    if (!beat.LeaseExtended)
                    {
                        log.Warn("lease not extended, shutting down", ("work_id", workId));
                        End(lost: false);
                        break;
                    }

                    _first.TrySetResult(true);
                }
                catch (HeartbeatPreconditionFailedException ex)
                {
                    log.Error("lease lost: heartbeat precondition failed", ("work_id", workId), ("server_state", ex.CurrentState?.State),
                        ("server_ttl_seconds", ex.CurrentState?.TtlSeconds), ("server_last_heartbeat", ex.CurrentState?.LastHeartbeat));
                    End(lost: true);
                    break;
                }
                catch (ManagedAgentsException ex) when (ex.IsFatal)
                {
                    log.Error("permanent heartbeat failure", ("work_id", workId), ("status", ex.Status), ("error", ex.ErrorMessage));
                    Rejected = true;
                    End(lost: false);
                    break;
                }
                catch (ManagedAgentsException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    if (_time.GetUtcNow() - lastSuccess > Ttl)
                    {
                        log.Error("lease assumed lost: no successful heartbeat in ttl", ("work_id", workId), ("ttl", Ttl));
                        End(lost: true);
                        break;
                    }

                    failures++;
                    log.Warn("transient heartbeat failure", ("work_id", workId), ("error", ex.ErrorMessage), ("attempt", failures));
                }

                await Task.Delay(failures == 0 ? interval : RetryDelay(failures, interval, Ttl), _time, sleep.Token);
            }
        }
        catch (OperationCanceledException)
        {
            // the item is done, or the lease ended
        }
        finally
        {
            _first.TrySetResult(false);
        }
    }

    /// <summary>0.5 s doubled per failure in a row, at most <paramref name="interval"/> and at most the retry step (<see cref="RetryStep"/>).</summary>
    internal static TimeSpan RetryDelay(int failures, TimeSpan interval, TimeSpan ttl) =>
        TimeSpan.FromMilliseconds(Math.Min(Math.Min(interval.TotalMilliseconds, RetryStep(ttl).TotalMilliseconds),
            500 * Math.Pow(2, Math.Min(failures - 1, 16))));

    /// <summary>The longest wait between tries while beats fail: a tenth of the TTL, at least 1 s.</summary>
    internal static TimeSpan RetryStep(TimeSpan ttl) => TimeSpan.FromMilliseconds(Math.Max(1000, ttl.TotalMilliseconds / 10));

    /// <summary>How long one beat waits for its answer: the retry step, at least 5 s (a busy control plane), at most the interval.</summary>
    internal static TimeSpan AttemptTimeout(TimeSpan interval, TimeSpan ttl) =>
        TimeSpan.FromMilliseconds(Math.Min(interval.TotalMilliseconds, Math.Max(5000, RetryStep(ttl).TotalMilliseconds)));

    private void End(bool lost)
    {
        Lost = lost;
        _first.TrySetResult(false);
        _ended.Cancel();
    }
}
