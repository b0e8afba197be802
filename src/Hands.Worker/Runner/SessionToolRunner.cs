using System.Diagnostics;
using System.Text.Json;
using System.Threading.Channels;
using Hands.Common;
using Hands.Protocol.Client;
using Hands.Protocol.Json;
using Hands.Protocol.Models;
using Hands.Worker.Hosting;
using Hands.Worker.Journal;
using Hands.Worker.Telemetry;
using Hands.Worker.Tools;
using Polly;
using Polly.Retry;

namespace Hands.Worker.Runner;

/// <summary>
/// Attaches to one session and answers the tool calls this worker owns, as the official runners do:
/// <list type="number">
/// <item>open the event stream first, then read the whole history and dispatch every call not yet answered
/// (de-duplicated by event id; if the history read fails, dispatch nothing and retry at the next reconnect);</item>
/// <item>route by <c>evaluated_permission</c>, failing closed: allow (or none) runs, deny never runs and posts nothing,
/// ask (or anything unknown) waits for a <c>user.tool_confirmation</c> whose verdict is allow;</item>
/// <item>leave calls to tools it does not have unanswered (another client owns them);</item>
/// <item>run calls one at a time, post each result with retries, and count a call answered only after its post
/// succeeded (a computed result is kept, so a failed post is retried, never re-run);</item>
/// <item>reconnect on a dropped stream (0.5 s doubling to 10 s), so a checkpoint/restore that cuts every connection
/// loses nothing; end on <c>session.status_terminated</c>/<c>session.deleted</c>, a fatal 4xx, cancellation, or
/// <c>max_idle</c> after the turn ended (any idle except <c>requires_action</c>) with nothing outstanding.</item>
/// </list>
/// </summary>
public sealed class SessionToolRunner
{
    private readonly ManagedAgentsClient _client;
    private readonly string _sessionId;
    private readonly Dictionary<string, IWorkerTool> _builtIn;
    private readonly Dictionary<string, IWorkerTool> _custom;
    private readonly TimeSpan _maxIdle;
    private readonly WorkerLog _log;
    private readonly Func<TimeSpan> _sendWindow;
    private readonly ToolCallLedger _calls = new();
    private readonly Channel<ToolCall> _queue = Channel.CreateUnbounded<ToolCall>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _end = new();
    private readonly TimeProvider _time;
    private IdleHeapTrim? _trim;
    private readonly ToolCallJournal? _journal;
    private readonly ResiliencePipeline _resultPost;
    private long _idleSinceTicks = -1;
    private int _executing;
    // Tool spans are children of what was current when the runner started (the work span), as in the SDK's runner.
    private ActivityContext _spanParent;
    private volatile bool _historyRead;
    private volatile string? _primaryThreadId;

    public SessionToolRunner(ManagedAgentsClient client, string sessionId, IEnumerable<IWorkerTool> tools, TimeSpan maxIdle, WorkerLog log, Func<TimeSpan>? sendWindow = null,
        TimeProvider? timeProvider = null)
        : this(client, sessionId, tools, maxIdle, log, sendWindow, timeProvider, journal: null)
    {
    }

    internal SessionToolRunner(ManagedAgentsClient client, string sessionId, IEnumerable<IWorkerTool> tools, TimeSpan maxIdle, WorkerLog log, Func<TimeSpan>? sendWindow,
        TimeProvider? timeProvider, ToolCallJournal? journal)
    {
        _journal = journal;
        _time = timeProvider ?? TimeProvider.System;
        _resultPost = BuildResultPost();
        _client = client;
        _sessionId = sessionId;
        var list = tools.ToList();
        _builtIn = list.Where(t => t.IsBuiltIn).ToDictionary(t => t.Name, StringComparer.Ordinal);
        _custom = list.Where(t => !t.IsBuiltIn).ToDictionary(t => t.Name, StringComparer.Ordinal);
        _maxIdle = maxIdle;
        _log = log;
        _sendWindow = sendWindow ?? (() => TimeSpan.FromMinutes(5));
    }

    /// <summary>
    /// Runs after each dispatched tool call, before the next one starts (the worker's memory sync, as the official
    /// TypeScript worker syncs between the tool calls its runner yields). It must not throw.
    /// </summary>
    public Func<CancellationToken, Task>? AfterToolCall { get; set; }

    /// <summary>Why the runner ended.</summary>
    public string? EndReason { get; private set; }

    /// <summary>Results posted by this runner (for logs and tests).</summary>
    public int Posted => _posted;
    private int _posted;

    /// <summary>
    /// Per-call outer timeout; deliberately longer than bash's own 120 s default so its message wins. <c>fork_explore</c>
    /// gets its branches' worst case instead (<see cref="Forking.ForkExploreTool.Budget"/>).
    /// </summary>
    public static TimeSpan ToolTimeout(SessionEvent call)
    {
        if (call.Type == EventTypes.AgentCustomToolUse && call.Name == Hands.Forking.ForkExploreToolDefinition.Name)
        {
            return Forking.ForkExploreTool.Budget(call.Input);
        }

        var requested = call.Name == "bash" && call.Input is { ValueKind: JsonValueKind.Object } input
            && input.TryGetProperty("timeout_ms", out var t) && t.TryGetInt64(out var ms) && ms > 0 ? TimeSpan.FromMilliseconds(ms) : TimeSpan.Zero;
        var floor = TimeSpan.FromSeconds(150);
        return requested + TimeSpan.FromSeconds(30) > floor ? requested + TimeSpan.FromSeconds(30) : floor;
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        _log.Info("session tool runner starting", ("session_id", _sessionId));
        _spanParent = Activity.Current?.Context ?? default;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _end.Token);
        var ct = linked.Token;
        // An attached worker mostly waits: what attaching and each call leave on the heap goes back to the host once
        // the session has been quiet for two seconds (bench density).
        using var trim = new IdleHeapTrim(TimeSpan.FromSeconds(2), _time, () => Volatile.Read(ref _executing) > 0);
        _trim = trim;
        var executor = Task.Run(() => ExecuteLoopAsync(ct), CancellationToken.None);
        var idle = Task.Run(() => IdleWatchAsync(ct), CancellationToken.None);
        try
        {
            await StreamLoopAsync(ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        finally
        {
            EndReason ??= cancellationToken.IsCancellationRequested ? "cancelled" : EndReason;
            _end.Cancel();
            _queue.Writer.TryComplete();
            await Task.WhenAll(executor, idle).WaitAsync(TimeSpan.FromSeconds(30), CancellationToken.None).ConfigureAwait(false);
        }
    }

    private void End(string reason)
    {
        EndReason ??= reason;
        _end.Cancel();
    }

    private async Task StreamLoopAsync(CancellationToken ct)
    {
        var backoff = TimeSpan.FromMilliseconds(500);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var stream = await _client.Events.OpenStreamAsync(_sessionId, cancellationToken: ct);
                await ReconcileAsync(ct);
                // Operators (and tests) wait on this line: from here no call in the session can be missed.
                _log.Info("attached: stream open, history reconciled", ("session_id", _sessionId));
                _trim?.Touch();
                await foreach (var e in stream.ReadAllAsync(ct))
                {
                    backoff = TimeSpan.FromMilliseconds(500);
                    Handle(e, live: true);
                    _trim?.Touch();
                    if (_end.IsCancellationRequested)
                    {
                        return;
                    }
                }

                _log.Debug("stream ended; reconnecting", ("session_id", _sessionId));
            }
            catch (ManagedAgentsException ex) when (ex.IsFatal)
            {
                _log.Error("permanent stream failure, shutting down", ("session_id", _sessionId), ("status", ex.Status), ("error", ex.ErrorMessage));
                End("stream refused: " + ex.Status);
                return;
            }
            catch (Exception ex) when (ex is ManagedAgentsException or HttpRequestException or IOException or JsonException && !ct.IsCancellationRequested)
            {
                _log.Warn("stream disconnected, reconnecting", ("session_id", _sessionId), ("error", ex.Message));
            }

            await Task.Delay(backoff, _time, ct);
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(10).Ticks));
        }
    }

    private async Task ReconcileAsync(CancellationToken ct)
    {
        List<SessionEvent> history;
        try
        {
            history = await _client.Events.ListAllAsync(_sessionId, 1000, ct).ToListAsync(ct);
        }
        catch (Exception ex) when (ex is ManagedAgentsException or HttpRequestException or IOException or JsonException && !ct.IsCancellationRequested)
        {
            _log.Warn("reconcile list failed", ("session_id", _sessionId), ("error", ex.Message));
            return; // dispatch nothing: a result might sit on a page we did not read
        }

        _historyRead = true;
        var calls = new List<SessionEvent>();
        SessionEvent? lastSignificant = null;
        foreach (var e in history)
        {
            NotePrimaryThread(e); // the history starts with the session's first event
            if (e.Type is EventTypes.AgentToolUse or EventTypes.AgentCustomToolUse)
            {
                calls.Add(e);
            }
            else
            {
                RecordAnswerOrVerdict(e);
            }

            if (e.Type is not (EventTypes.UserToolConfirmation or "session.thread_status_terminated"))
            {
                lastSignificant = e;
            }
        }

        foreach (var call in calls)
        {
            Arrive(call);
        }

        if (lastSignificant is { Type: EventTypes.StatusIdle } idle && EndsTurn(idle))
        {
            ArmIdle();
        }
    }

    /// <summary>Results mark their call answered; confirmations record the verdict for a held (or later) call.</summary>
    private void RecordAnswerOrVerdict(SessionEvent e)
    {
        switch (e.Type)
        {
            case EventTypes.UserToolResult when e.ToolUseId is not null:
                _calls.Answered(e.ToolUseId);
                _journal?.Settled(e.ToolUseId);
                break;
            case EventTypes.UserCustomToolResult when e.CustomToolUseId is not null:
                _calls.Answered(e.CustomToolUseId);
                _journal?.Settled(e.CustomToolUseId);
                break;
            case EventTypes.UserToolConfirmation when e.ToolUseId is not null:
                if (_calls.Confirmed(e.ToolUseId, e.Result ?? "deny") is { } held)
                {
                    Decide(held);
                }

                break;
        }
    }

    private static bool EndsTurn(SessionEvent idle) => idle.StopReason?.Type != "requires_action";

    /// <summary>
    /// Keeps the primary thread's id, the <c>session_thread_id</c> of the session's first thread status event: the
    /// conversation id of its calls' spans (a primary-thread call has no thread id of its own), as the SDK's runner does.
    /// </summary>
    private void NotePrimaryThread(SessionEvent e)
    {
        if (_primaryThreadId is null && e.Type is "session.thread_status_running" or "session.thread_status_idle"
                or "session.thread_status_rescheduled" or "session.thread_status_terminated")
        {
            _primaryThreadId = e.SessionThreadId;
        }
    }

    /// <summary>The call's conversation id: its own thread's, else the primary thread's (the SDK's <c>||</c>: an empty id falls back).</summary>
    private string? ConversationId(SessionEvent call) => string.IsNullOrEmpty(call.SessionThreadId) ? _primaryThreadId : call.SessionThreadId;

    private void Handle(SessionEvent e, bool live)
    {
        if (_historyRead)
        {
            NotePrimaryThread(e); // without the history the stream may have begun after the first thread status event
        }

        if (e.Type is not (EventTypes.UserToolConfirmation or "session.thread_status_terminated"))
        {
            Interlocked.Exchange(ref _idleSinceTicks, -1);
        }

        switch (e.Type)
        {
            case EventTypes.AgentToolUse or EventTypes.AgentCustomToolUse when e.Id is not null:
                Arrive(e);
                break;
            case EventTypes.UserToolResult or EventTypes.UserCustomToolResult or EventTypes.UserToolConfirmation:
                RecordAnswerOrVerdict(e);
                break;
            case EventTypes.StatusIdle when EndsTurn(e):
                ArmIdle();
                break;
            case EventTypes.StatusTerminated or EventTypes.SessionDeleted when live:
                _log.Info("session terminated", ("session_id", _sessionId));
                End("session terminated");
                break;
        }
    }

    private void ArmIdle()
    {
        if (_maxIdle > TimeSpan.Zero)
        {
            Interlocked.Exchange(ref _idleSinceTicks, _time.GetUtcNow().UtcTicks);
        }
    }

    /// <summary>Routes a call seen for the first time (or one whose result is still to be posted).</summary>
    private void Arrive(SessionEvent e)
    {
        if (_calls.Arrive(e) is not { } call)
        {
            return;
        }

        if (call.State == ToolCallState.Unsent)
        {
            Enqueue(call);
            return;
        }

        var custom = e.Type == EventTypes.AgentCustomToolUse;
        if (!(custom ? _custom : _builtIn).ContainsKey(e.Name ?? ""))
        {
            _log.Info("tool not owned by this runner; leaving the tool_use_id pending for its owner", ("tool", e.Name), ("tool_use_id", e.Id));
            _calls.TryMove(call, ToolCallState.NotOurs);
            return;
        }

        switch (custom ? null : e.EvaluatedPermission)
        {
            case null or "allow":
                Enqueue(call);
                break;
            case "deny":
                _log.Info("tool call denied; not executing", ("tool", e.Name), ("tool_use_id", e.Id));
                _calls.TryMove(call, ToolCallState.Answered); // the server resolved it
                break;
            default:
                if (call.Verdict is not null)
                {
                    Decide(call);
                    return;
                }

                _log.Info("tool call awaiting confirmation; holding", ("tool", e.Name), ("tool_use_id", e.Id));
                _calls.TryMove(call, ToolCallState.AwaitingConfirmation);
                break;
        }
    }

    /// <summary>Acts on a confirmation's verdict for a call that needs one: only <c>allow</c> runs it.</summary>
    private void Decide(ToolCall call)
    {
        if (call.Verdict == "allow")
        {
            _log.Info("tool call confirmed", ("tool", call.Event?.Name), ("tool_use_id", call.Id));
            Enqueue(call);
        }
        else
        {
            _log.Info("tool call denied; not executing", ("tool", call.Event?.Name), ("tool_use_id", call.Id));
            _calls.TryMove(call, ToolCallState.Answered);
        }
    }

    private void Enqueue(ToolCall call)
    {
        if (_calls.TryMove(call, ToolCallState.Queued))
        {
            _queue.Writer.TryWrite(call);
        }
    }

    private async Task ExecuteLoopAsync(CancellationToken ct)
    {
        try
        {
            await foreach (var call in _queue.Reader.ReadAllAsync(ct))
            {
                // Counted apart from the call's state: a result someone else posts marks it answered while it still runs,
                // and the idle clock must not end the runner under a running tool.
                Interlocked.Increment(ref _executing);
                try
                {
                    await ExecuteOneAsync(call, ct);
                    if (AfterToolCall is { } after)
                    {
                        await after(ct);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref _executing);
                    _trim?.Touch();
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ExecuteOneAsync(ToolCall entry, CancellationToken ct)
    {
        var kept = entry.Output;
        if (entry.Event is not { } call || !_calls.TryMove(entry, ToolCallState.Running))
        {
            return; // answered meanwhile
        }

        var custom = call.Type == EventTypes.AgentCustomToolUse;
        var output = kept ?? Inherited(call, custom) ?? await RunAsync(call, custom, ct);
        var result = new SessionEvent
        {
            Type = custom ? EventTypes.UserCustomToolResult : EventTypes.UserToolResult,
            ToolUseId = custom ? null : call.Id,
            CustomToolUseId = custom ? call.Id : null,
            IsError = output.IsError,
            Content = Normalize(output.Content),
        };
        // After shutdown began (e.g. a graceful stop), still try briefly to deliver the aborted call's error result.
        using var post = ct.IsCancellationRequested ? new CancellationTokenSource(TimeSpan.FromSeconds(5)) : CancellationTokenSource.CreateLinkedTokenSource(ct);
        if (await PostAsync(result, ConversationId(call), post.Token))
        {
            _journal?.Posted(call.Id!);
            _calls.TryMove(entry, ToolCallState.Answered);
            Interlocked.Increment(ref _posted);
        }
        else
        {
            _calls.KeepUnsent(entry, output);
        }
    }

    /// <summary>
    /// Tools a successor may run again when their worker died mid-call: they only read. Every other call a previous
    /// worker started is answered with <see cref="Interrupted"/> instead (at most once: docs/worker.md).
    /// </summary>
    internal static readonly IReadOnlySet<string> SideEffectFree = new HashSet<string>(["read", "glob", "grep"], StringComparer.Ordinal);

    /// <summary>What a previous worker of this session left for <paramref name="call"/>: its computed result, or an interruption.</summary>
    private ToolOutput? Inherited(SessionEvent call, bool custom)
    {
        if (_journal?.Previous(call.Id!) is not { } previous)
        {
            return null;
        }

        if (previous.Output is { } computed)
        {
            _log.Info("posting the result a previous worker computed but did not post", ("tool", call.Name), ("tool_use_id", call.Id));
            return computed;
        }

        if (!custom && SideEffectFree.Contains(call.Name ?? ""))
        {
            _log.Info("running again a read-only call a previous worker started", ("tool", call.Name), ("tool_use_id", call.Id));
            return null;
        }

        var stopped = previous.Processes.Sum(p => OrphanedProcesses.KillTree(p.Pid, p.Start, previous.Since));
        _log.Warn("a previous worker started this call and died before posting its result; not running it again",
            ("tool", call.Name), ("tool_use_id", call.Id), ("processes_stopped", stopped));
        var output = Interrupted(call.Name ?? "tool", stopped);
        _journal.Finished(call.Id!, output);
        return output;
    }

    /// <summary>The error result for a call whose worker died while running it.</summary>
    internal static ToolOutput Interrupted(string tool, int processesStopped) => ToolOutput.Text(
        $"{tool}: interrupted. The worker running this call stopped before it could report a result (it was killed or restarted), "
        + "so the call may or may not have completed. It was not run again"
        + (processesStopped > 0 ? $", and the {processesStopped} process(es) it left running were stopped" : "")
        + ". Check its effects before repeating it.", isError: true);

    private async Task<ToolOutput> RunAsync(SessionEvent call, bool custom, CancellationToken ct)
    {
        ToolOutput output;
        var tool = (custom ? _custom : _builtIn)[call.Name!];
        // A read a successor would run again anyway needs no record: it costs two flushes to disk per call.
        var journal = custom || !SideEffectFree.Contains(call.Name!) ? _journal : null;
        journal?.Started(call.Id!, call.Name!);
        _log.Info("executing tool", ("session_id", _sessionId), ("tool", call.Name), ("tool_use_id", call.Id));
        var span = ToolSpan.Start(_client.Tracing, call, tool, _sessionId, ConversationId(call), _spanParent);
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(ToolTimeout(call));
        try
        {
            output = await tool.ExecuteAsync(call.Input ?? default, timeout.Token);
        }
        catch (ToolError ex)
        {
            output = ToolOutput.Text(ex.Message, isError: true);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            output = ToolOutput.Text($"{call.Name}: tool timed out after {(long)ToolTimeout(call).TotalMilliseconds}ms", isError: true);
        }
        catch (OperationCanceledException)
        {
            output = ToolOutput.Text($"{call.Name}: This operation was aborted", isError: true);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            output = ToolOutput.Text("Error: " + ex.Message, isError: true);
        }

        ToolMetrics.Record(call.Name!, started, output.IsError, ct.IsCancellationRequested);
        journal?.Finished(call.Id!, output);
        // Ended before the result is posted: the post is the span's sibling. A run the runner's stop cut short is a cancellation.
        span?.End(call.Input, output, Normalize(output.Content), runnerStopped: ct.IsCancellationRequested);
        return output;
    }

    /// <summary>Empty text becomes <c>(no output)</c>, as in the official runners.</summary>
    internal static List<ContentBlock> Normalize(IReadOnlyList<ContentBlock> content)
    {
        if (content.Count == 0)
        {
            return [ContentBlock.FromText("(no output)")];
        }

        return content.Select(b => b.Type == "text" && string.IsNullOrEmpty(b.Text) ? ContentBlock.FromText("(no output)") : b).ToList();
    }

    /// <summary>
    /// The result post's retry policy (its one retry layer: the client is called with <c>retry: false</c>): transient
    /// failures are retried after 1 s doubling to 30 s, with a quarter of jitter, while the next try still starts
    /// within the send window (the lease's TTL: past it another worker may own the call).
    /// </summary>
    private ResiliencePipeline BuildResultPost() => new ResiliencePipelineBuilder { TimeProvider = _time }
        .AddRetry(new RetryStrategyOptions
        {
            Name = "tool-result-post",
            MaxRetryAttempts = int.MaxValue,
            ShouldHandle = args => ValueTask.FromResult(IsTransient(args.Outcome.Exception, args.Context.CancellationToken)
                && args.Context.Properties.TryGetValue(PostDeadline, out var deadline)
                && _time.GetUtcNow() + ResultPostDelay(args.AttemptNumber) <= deadline),
            DelayGenerator = args => ValueTask.FromResult<TimeSpan?>(ResultPostDelay(args.AttemptNumber) * (0.75 + Random.Shared.NextDouble() * 0.5)),
            OnRetry = args =>
            {
                _log.Warn("tool result send failed; retrying", ("error", args.Outcome.Exception?.Message));
                return ValueTask.CompletedTask;
            },
        })
        .Build();

    private static readonly ResiliencePropertyKey<DateTimeOffset> PostDeadline = new("hands.tool_result.deadline");

    private static TimeSpan ResultPostDelay(int attempt) => TimeSpan.FromSeconds(Math.Min(Math.Pow(2, attempt), 30));

    private static bool IsTransient(Exception? ex, CancellationToken ct) =>
        !ct.IsCancellationRequested && ex is HttpRequestException or IOException or ManagedAgentsException { IsFatal: false, Status: not 409 };

    private async Task<bool> PostAsync(SessionEvent result, string? conversationId, CancellationToken ct)
    {
        var id = result.ToolUseId ?? result.CustomToolUseId;
        var context = ResilienceContextPool.Shared.Get(ct);
        context.Properties.Set(PostDeadline, _time.GetUtcNow() + _sendWindow());
        try
        {
            await _resultPost.ExecuteAsync(async c => await _client.Events.SendAsync(_sessionId, [result], c.CancellationToken, retry: false, timeout: TimeSpan.FromSeconds(30),
                conversationId: conversationId),
                context);
            return true;
        }
        catch (ManagedAgentsException ex) when (ex.Status == 409)
        {
            _log.Info("tool result was already recorded", ("tool_use_id", id));
            return true;
        }
        catch (ManagedAgentsException ex) when (ex.IsFatal)
        {
            _log.Error("failed to send tool result", ("tool_use_id", id), ("status", ex.Status), ("error", ex.ErrorMessage));
            return false;
        }
        catch (Exception ex) when (ex is ManagedAgentsException or HttpRequestException or IOException && !ct.IsCancellationRequested)
        {
            _log.Error("failed to send tool result", ("tool_use_id", id), ("error", ex.Message));
            return false;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }
    }

    private async Task IdleWatchAsync(CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(50), _time, ct);
                var since = Interlocked.Read(ref _idleSinceTicks);
                if (since < 0 || _maxIdle <= TimeSpan.Zero)
                {
                    continue;
                }

                if (_calls.HasOutstanding || Volatile.Read(ref _executing) > 0)
                {
                    ArmIdle(); // held and running calls defer the countdown
                    continue;
                }

                if (_time.GetUtcNow().UtcTicks - since >= _maxIdle.Ticks)
                {
                    _log.Info("session idle after its turn ended; stopping", ("session_id", _sessionId), ("max_idle_ms", (long)_maxIdle.TotalMilliseconds));
                    End("idle");
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }
}
