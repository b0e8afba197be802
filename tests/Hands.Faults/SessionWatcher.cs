using System.Collections.Concurrent;
using System.Diagnostics;
using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Faults;

/// <summary>One session's turn as its event stream shows it.</summary>
public sealed class SessionProgress
{
    private int _toolUses;
    private int _toolResults;

    internal SessionProgress(string id, long startedTimestamp)
    {
        Id = id;
        StartedTimestamp = startedTimestamp;
    }

    /// <summary>The session id.</summary>
    public string Id { get; }

    /// <summary>When its message was sent (<see cref="Stopwatch"/> timestamp).</summary>
    public long StartedTimestamp { get; }

    /// <summary>When its turn ended (<see cref="Stopwatch"/> timestamp), or 0.</summary>
    public long EndedTimestamp { get; internal set; }

    /// <summary>When its first tool result arrived (<see cref="Stopwatch"/> timestamp), or 0.</summary>
    public long FirstResultTimestamp { get; internal set; }

    /// <summary>Whether the turn ended with <c>end_turn</c>.</summary>
    public bool Ended => EndedTimestamp != 0;

    /// <summary>Tool calls emitted so far.</summary>
    public int ToolUses => Volatile.Read(ref _toolUses);

    /// <summary>Tool results seen so far.</summary>
    public int ToolResults => Volatile.Read(ref _toolResults);

    /// <summary>The step whose call awaits its result, or null (the i-th call is step i).</summary>
    public int? PendingStep { get; internal set; }

    /// <summary>Message sent to end of turn; null while it runs.</summary>
    public TimeSpan? Latency => Ended ? Stopwatch.GetElapsedTime(StartedTimestamp, EndedTimestamp) : null;

    internal void SawToolUse() => Interlocked.Increment(ref _toolUses);

    internal void SawToolResult() => Interlocked.Increment(ref _toolResults);
}

/// <summary>
/// Follows sessions' event streams from the control plane (directly, past the fault proxies) to learn where each turn
/// stands: the call awaiting its result, each result as it lands (<see cref="ToolResult"/>), the end of the turn. A
/// stream cut by a control-plane restart is opened again after the last event seen, every 250 ms at most, until the
/// turn ended or the watcher is disposed.
/// </summary>
public sealed class SessionWatcher(ManagedAgentsClient client, TimeProvider? time = null) : IAsyncDisposable
{
    private const int MaxReconnects = 100_000;
    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, SessionProgress> _sessions = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<Task> _follows = [];

    /// <summary>Raised (on a stream's task) when a session's tool result arrives.</summary>
    public event Action<SessionProgress>? ToolResult;

    /// <summary>Raised (on a stream's task) when a session's turn ends with <c>end_turn</c>.</summary>
    public event Action<SessionProgress>? TurnEnded;

    /// <summary>Every session watched.</summary>
    public IReadOnlyCollection<SessionProgress> Sessions => [.. _sessions.Values];

    /// <summary>Stream reconnections so far (each control-plane restart costs one per open stream).</summary>
    public int Reconnects => _reconnects;

    private int _reconnects;

    /// <summary>Follows <paramref name="sessionId"/> from the event after <paramref name="afterEventId"/> (the message that started its turn).</summary>
    public SessionProgress Watch(string sessionId, string afterEventId, long startedTimestamp)
    {
        var progress = new SessionProgress(sessionId, startedTimestamp);
        if (!_sessions.TryAdd(sessionId, progress))
        {
            throw new InvalidOperationException($"{sessionId} is already watched");
        }

        _follows.Add(Task.Run(() => FollowAsync(progress, afterEventId)));
        return progress;
    }

    private async Task FollowAsync(SessionProgress progress, string lastEventId)
    {
        for (var attempt = 0; attempt < MaxReconnects && !_stop.IsCancellationRequested && !progress.Ended; attempt++)
        {
            try
            {
                await foreach (var e in client.Events.StreamAsync(progress.Id, lastEventId, _stop.Token).ConfigureAwait(false))
                {
                    lastEventId = e.Id ?? lastEventId;
                    Apply(progress, e);
                    if (progress.Ended)
                    {
                        return;
                    }
                }
            }
            catch (Exception ex) when (ex is ManagedAgentsException or HttpRequestException or IOException or OperationCanceledException)
            {
                // Cut by a restart (or disposal): open it again after the last event seen.
            }

            if (_stop.IsCancellationRequested)
            {
                return;
            }

            Interlocked.Increment(ref _reconnects);
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), _time, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private void Apply(SessionProgress progress, SessionEvent e)
    {
        switch (e.Type)
        {
            case EventTypes.AgentToolUse:
                progress.PendingStep = progress.ToolUses;
                progress.SawToolUse();
                break;
            case EventTypes.UserToolResult:
                progress.PendingStep = null;
                if (progress.FirstResultTimestamp == 0)
                {
                    progress.FirstResultTimestamp = Stopwatch.GetTimestamp();
                }

                progress.SawToolResult();
                ToolResult?.Invoke(progress);
                break;
            case EventTypes.StatusIdle when e.StopReason?.Type == "end_turn":
                progress.EndedTimestamp = Stopwatch.GetTimestamp();
                TurnEnded?.Invoke(progress);
                break;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_follows).ConfigureAwait(false);
        _stop.Dispose();
    }
}
