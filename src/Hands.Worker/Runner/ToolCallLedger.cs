using Hands.Protocol.Models;
using Hands.Worker.Tools;

namespace Hands.Worker.Runner;

/// <summary>Where one tool call is, as this worker sees it.</summary>
internal enum ToolCallState
{
    /// <summary>Only a confirmation has been seen (history can list it before its call).</summary>
    VerdictOnly,

    /// <summary>A call to a tool this worker does not have: left for its owner.</summary>
    NotOurs,

    /// <summary>Waiting for a <c>user.tool_confirmation</c>.</summary>
    AwaitingConfirmation,

    /// <summary>In the execution queue.</summary>
    Queued,

    /// <summary>Executing now.</summary>
    Running,

    /// <summary>Executed; the result is kept because posting it failed, so it is posted again, never re-run.</summary>
    Unsent,

    /// <summary>A result is recorded (by this worker or anyone), or the call was denied: nothing more to do.</summary>
    Answered,
}

/// <summary>One tool call's state and what it carries in that state.</summary>
internal sealed class ToolCall(string id)
{
    /// <summary>The <c>agent.tool_use</c> / <c>agent.custom_tool_use</c> event id.</summary>
    public string Id { get; } = id;

    /// <summary>The call event; null until it has been seen (a verdict can come first).</summary>
    public SessionEvent? Event { get; set; }

    /// <summary>The current state; changed only by <see cref="ToolCallLedger"/>.</summary>
    public ToolCallState State { get; set; } = ToolCallState.VerdictOnly;

    /// <summary>The confirmation's verdict (<c>allow</c>, <c>deny</c>), when one has been seen.</summary>
    public string? Verdict { get; set; }

    /// <summary>The computed result while it is <see cref="ToolCallState.Unsent"/> or being posted.</summary>
    public ToolOutput? Output { get; set; }
}

/// <summary>
/// The tool calls of one session and the one transition function over them (replacing six loose sets). Thread-safe:
/// the event stream and the executor both move calls. An answered call drops its event and output, so a long session
/// keeps only ids.
/// </summary>
internal sealed class ToolCallLedger
{
    private static readonly Dictionary<ToolCallState, ToolCallState[]> Moves = new()
    {
        [ToolCallState.VerdictOnly] = [ToolCallState.NotOurs, ToolCallState.AwaitingConfirmation, ToolCallState.Queued, ToolCallState.Answered],
        [ToolCallState.NotOurs] = [ToolCallState.Answered],
        [ToolCallState.AwaitingConfirmation] = [ToolCallState.Queued, ToolCallState.Answered],
        [ToolCallState.Queued] = [ToolCallState.Running, ToolCallState.Answered],
        [ToolCallState.Running] = [ToolCallState.Unsent, ToolCallState.Answered],
        [ToolCallState.Unsent] = [ToolCallState.Queued, ToolCallState.Answered],
        [ToolCallState.Answered] = [],
    };

    private readonly Dictionary<string, ToolCall> _calls = new(StringComparer.Ordinal);

    /// <summary>True when a call waits for confirmation, is queued or runs: the idle clock must not run out.</summary>
    public bool HasOutstanding
    {
        get
        {
            lock (_calls)
            {
                return _calls.Values.Any(c => c.State is ToolCallState.AwaitingConfirmation or ToolCallState.Queued or ToolCallState.Running);
            }
        }
    }

    /// <summary>True when <paramref name="from"/> may move to <paramref name="to"/>.</summary>
    public static bool CanMove(ToolCallState from, ToolCallState to) => Moves[from].Contains(to);

    /// <summary>The call's state, or null when nothing about it has been seen.</summary>
    public ToolCallState? StateOf(string id)
    {
        lock (_calls)
        {
            return _calls.TryGetValue(id, out var call) ? call.State : null;
        }
    }

    /// <summary>
    /// A call event arrived (live or from history). Answers the call to route it when it is new or its result is still
    /// to be delivered (<see cref="ToolCallState.Unsent"/>), with any verdict already seen; null when there is nothing
    /// to do (seen before, answered, or in hand).
    /// </summary>
    public ToolCall? Arrive(SessionEvent call)
    {
        lock (_calls)
        {
            var entry = Entry(call.Id!);
            if (entry.State is not (ToolCallState.VerdictOnly or ToolCallState.Unsent) || (entry.State == ToolCallState.VerdictOnly && entry.Event is not null))
            {
                return null;
            }

            entry.Event ??= call;
            return entry;
        }
    }

    /// <summary>A result for the call was recorded (by anyone).</summary>
    public void Answered(string id)
    {
        lock (_calls)
        {
            Move(Entry(id), ToolCallState.Answered);
        }
    }

    /// <summary>
    /// A confirmation arrived. Answers the call when it was waiting for one (the caller queues it on allow); a verdict
    /// for a call not yet seen is kept for when it comes.
    /// </summary>
    public ToolCall? Confirmed(string id, string verdict)
    {
        lock (_calls)
        {
            var entry = Entry(id);
            entry.Verdict = verdict;
            return entry.State == ToolCallState.AwaitingConfirmation ? entry : null;
        }
    }

    /// <summary>Moves <paramref name="call"/> to <paramref name="to"/>; false (and no change) when the table does not allow it.</summary>
    public bool TryMove(ToolCall call, ToolCallState to)
    {
        lock (_calls)
        {
            if (!CanMove(call.State, to))
            {
                return false;
            }

            Move(call, to);
            return true;
        }
    }

    /// <summary>Posting the result of a running call failed: keep <paramref name="output"/> so the next try posts it.</summary>
    public void KeepUnsent(ToolCall call, ToolOutput output)
    {
        lock (_calls)
        {
            if (CanMove(call.State, ToolCallState.Unsent))
            {
                call.State = ToolCallState.Unsent;
                call.Output = output;
            }
        }
    }

    private ToolCall Entry(string id)
    {
        if (!_calls.TryGetValue(id, out var call))
        {
            call = new ToolCall(id);
            _calls[id] = call;
        }

        return call;
    }

    private static void Move(ToolCall call, ToolCallState to)
    {
        if (call.State == to || !CanMove(call.State, to))
        {
            return;
        }

        call.State = to;
        if (to == ToolCallState.Answered)
        {
            call.Event = null;
            call.Output = null;
        }
    }
}
