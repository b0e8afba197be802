using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Cli;

/// <summary>Sends a user message and follows the session's stream until the turn ends.</summary>
internal static class SessionDriver
{
    /// <summary>
    /// Sends <paramref name="prompt"/>, then streams from just after the sent message (Last-Event-ID), so no event
    /// can fall between sending and subscribing. Returns the stop reason (<c>end_turn</c>, ...).
    /// </summary>
    public static async Task<string> RunTurnAsync(ManagedAgentsClient client, string sessionId, string prompt, EventRenderer renderer, CancellationToken ct,
        TimeProvider? time = null)
    {
        var sent = await client.Events.SendAsync(sessionId,
            [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText(prompt)] }], ct);
        return await FollowAsync(client, sessionId, sent.LastOrDefault()?.Id, renderer, ct, time);
    }

    /// <summary>
    /// Reattaches: when the session's latest event already ends a turn, renders it and returns; otherwise follows the
    /// stream from there until the turn ends.
    /// </summary>
    public static async Task<string> ReattachAsync(ManagedAgentsClient client, string sessionId, EventRenderer renderer, CancellationToken ct,
        TimeProvider? time = null)
    {
        var latest = (await client.Events.ListAsync(sessionId, limit: 1, order: "desc", cancellationToken: ct)).Data.FirstOrDefault();
        if (latest is not null && renderer.Render(latest) is { } reason)
        {
            return reason;
        }

        return await FollowAsync(client, sessionId, latest?.Id, renderer, ct, time);
    }

    /// <summary>
    /// Streams after <paramref name="lastEventId"/> until the turn ends, reconnecting after a dropped stream from the
    /// last event seen. <c>requires_action</c> is not the end: the worker or the user must act. The pauses between
    /// reconnects run on <paramref name="time"/> (the system clock by default).
    /// </summary>
    /// <remarks>
    /// A reconnect loop, not a retry pipeline: it resumes a stream from the last event seen rather than repeating a
    /// failed call, it runs until the turn ends however often the stream drops, and its backoff starts over whenever
    /// events flow again, which a retry strategy's attempt count cannot express.
    /// </remarks>
    public static async Task<string> FollowAsync(ManagedAgentsClient client, string sessionId, string? lastEventId, EventRenderer renderer, CancellationToken ct,
        TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var last = lastEventId;
        var delay = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            try
            {
                await foreach (var e in client.Events.StreamAsync(sessionId, last, ct))
                {
                    last = e.Id ?? last;
                    delay = TimeSpan.FromMilliseconds(250);
                    if (renderer.Render(e) is { } reason)
                    {
                        return reason;
                    }
                }
            }
            catch (ManagedAgentsException ex) when (!ex.IsFatal && !ct.IsCancellationRequested)
            {
                // the stream broke (the control plane restarted?); resume after the last event seen
            }
            catch (HttpRequestException) when (!ct.IsCancellationRequested)
            {
            }
            catch (IOException) when (!ct.IsCancellationRequested)
            {
            }

            await Task.Delay(delay, time, ct);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }
    }
}
