using Hands.Protocol.Client;
using Hands.Protocol.Models;

namespace Hands.Cli;

/// <summary>Sends a user message and follows the session's stream until the turn ends.</summary>
internal static class SessionDriver
{
    /// <summary>
    /// Sends <paramref name="prompt"/>, then streams from just after the sent message (Last-Event-ID), so no event
    /// can fall between sending and subscribing. Reconnects after a dropped stream the same way. Returns the stop
    /// reason (<c>end_turn</c>, ...). <c>requires_action</c> is not the end: the worker or the user must act.
    /// </summary>
    public static async Task<string> RunTurnAsync(ManagedAgentsClient client, string sessionId, string prompt, EventRenderer renderer, CancellationToken ct)
    {
        var sent = await client.Events.SendAsync(sessionId,
            [new SessionEvent { Type = EventTypes.UserMessage, Content = [ContentBlock.FromText(prompt)] }], ct);
        var last = sent.LastOrDefault()?.Id;
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
                // the stream broke; resume after the last event seen
            }

            await Task.Delay(delay, ct);
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }
    }
}
