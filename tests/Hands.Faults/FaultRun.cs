using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.Versioning;
using Hands.Protocol.Models;
using Hands.Sandboxes.Client;

namespace Hands.Faults;

/// <summary>Settings of a <see cref="FaultRun"/>.</summary>
public sealed class FaultRunOptions
{
    /// <summary>Sessions in flight at once.</summary>
    public int Sessions { get; init; } = 3;

    /// <summary>
    /// Soak: while faults are injected, each session that completes is accounted, its sandbox released, and a new one
    /// started in its place (so there is always work to hit). Off: the first <see cref="Sessions"/> are all there is.
    /// </summary>
    public bool KeepSessionsRunning { get; init; }

    /// <summary>The faults, in order (a random schedule is endless: <see cref="MaxFaults"/> and <see cref="FaultWindow"/> bound it).</summary>
    public IEnumerable<PlannedFault> Faults { get; init; } = [];

    /// <summary>Most faults taken from <see cref="Faults"/>.</summary>
    public int MaxFaults { get; init; } = 10_000;

    /// <summary>No fault is started after this long from the start.</summary>
    public TimeSpan FaultWindow { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long a fault waits for its point before it is injected anyway.</summary>
    public TimeSpan PointTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>After the last fault, how long every session has to finish its turn.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromMinutes(3);

    /// <summary>The seed of the schedule (reported) and of the choice of targets.</summary>
    public int Seed { get; init; }

    /// <summary>Whether <see cref="Faults"/> came from <see cref="Seed"/> (then the seed is printed with the outcomes).</summary>
    public bool RandomSchedule { get; init; }

    /// <summary>Called with the stack after the sessions are accounted, before it is torn down (a test's own look at the processes' logs).</summary>
    public Action<FaultStack>? OnTearDown { get; init; }

    /// <summary>The clock the run's own waits are on.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;
}

/// <summary>
/// A fault-injection run on a <see cref="FaultStack"/>: starts the sessions (each plays <see cref="LedgerScenario"/>),
/// injects the faults one at a time, each at its point, waits for every turn to end, then accounts every session from
/// the control plane's history and its sandbox's ledger, looks for orphans the engine's recovery left, tears the stack
/// down and looks for leaks. Faults never overlap: a killed process is running again (and a burst or cut is over)
/// before the next fault is looked for.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class FaultRun
{
    private static readonly TimeSpan SpawnPoll = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan StepPoll = TimeSpan.FromMilliseconds(50);
    private static readonly TimeSpan WorkerAppears = TimeSpan.FromSeconds(15);
    private const int MaxSessions = 10_000;
    private readonly FaultStack _stack;
    private readonly FaultRunOptions _options;
    private readonly FaultOutcomes _outcomes;
    private readonly SessionWatcher _watcher;
    private readonly Random _rng;
    private readonly TimeProvider _time;
    private readonly Action<string> _log;
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly ConcurrentDictionary<string, Task<SessionAccount>> _released = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _firstSandbox = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<Task> _background = [];
    private readonly CancellationTokenSource _stopping = new();
    private volatile bool _windowOpen = true;
    private int _created;

    private FaultRun(FaultStack stack, FaultRunOptions options, FaultOutcomes outcomes)
    {
        _stack = stack;
        _options = options;
        _outcomes = outcomes;
        _time = options.Time;
        _log = stack.Options.Log;
        _rng = new Random(options.Seed);
        _watcher = new SessionWatcher(stack.App, _time);
        _watcher.TurnEnded += OnTurnEnded;
        _watcher.ToolResult += OnFirstResult;
    }

    /// <summary>Starts the stack, runs the sessions and faults, tears it all down and answers the counted outcomes.</summary>
    public static async Task<FaultOutcomes> RunAsync(FaultStackOptions stackOptions, FaultRunOptions runOptions, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stackOptions);
        ArgumentNullException.ThrowIfNull(runOptions);
        if (runOptions.RandomSchedule)
        {
            stackOptions.Log($"fault schedule: random, seed {runOptions.Seed}");
        }

        var outcomes = new FaultOutcomes
        {
            Seed = runOptions.RandomSchedule ? runOptions.Seed : null,
            Shape = $"{runOptions.Sessions} sessions at once{(runOptions.KeepSessionsRunning ? " (replaced as they finish)" : "")} × {stackOptions.Steps} steps",
        };
        await using var stack = await FaultStack.StartAsync(stackOptions, cancellationToken).ConfigureAwait(false);
        var run = new FaultRun(stack, runOptions, outcomes);
        try
        {
            await run.RunAsync(cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await run.StopAsync().ConfigureAwait(false);
        }

        runOptions.OnTearDown?.Invoke(stack);
        outcomes.LeaksAfterTeardown.AddRange(await stack.TearDownAsync(cancellationToken).ConfigureAwait(false));
        foreach (var process in new[] { stack.ControlPlane, stack.Engine, stack.Orchestrator })
        {
            outcomes.Starts[process.Name] = process.Starts;
        }

        outcomes.Proxied = (stack.OrchestratorProxy.Answered500 + stack.WorkerProxy.Answered500, stack.OrchestratorProxy.Answered429 + stack.WorkerProxy.Answered429,
            stack.WorkerProxy.CutDropped);
        return outcomes;
    }

    /// <summary>
    /// One session's account from the control plane's history and its sandbox's ledger: its calls, their results
    /// (lost, twice, interrupted), the ledger lines (twice, missing behind a successful result), whether its turn ended.
    /// </summary>
    public static async Task<SessionAccount> AccountAsync(FaultStack stack, string sessionId, int steps, TimeProvider time, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stack);
        var events = await Patiently.RunAsync(async ct => await stack.App.Events.ListAllAsync(sessionId, cancellationToken: ct).ToListAsync(ct).ConfigureAwait(false),
            time, cancellationToken).ConfigureAwait(false);
        await stack.SaveSessionLogAsync(sessionId, events, cancellationToken).ConfigureAwait(false);
        var ledger = await Patiently.RunAsync(ct => stack.ReadLedgerAsync(sessionId, ct), time, cancellationToken).ConfigureAwait(false);
        // Each run of a step writes its line in the sandbox and posts it to the host: the larger count is how often it ran
        // (the sandbox's copy is lost with a sandbox that was replaced; the host's misses a post cut off by a fault).
        var lines = ledger.Split('\n', StringSplitOptions.RemoveEmptyEntries).GroupBy(l => l, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        var details = new List<string>();
        var replaced = false;
        for (var n = 0; n < steps; n++)
        {
            var line = LedgerScenario.Line(sessionId, n);
            var posted = stack.WorkerProxy.LedgerCount(line);
            if (posted > 0 && !lines.ContainsKey(line))
            {
                // Posted only after it was written to the sandbox's ledger: that ledger was in another sandbox, since lost.
                replaced = true;
                details.Add($"{sessionId}: step {n} ran in a sandbox that was lost (its line reached the host, not this sandbox's ledger)");
            }

            if (posted > lines.GetValueOrDefault(line))
            {
                lines[line] = posted;
            }
        }

        var uses = events.Where(e => e.Type == EventTypes.AgentToolUse).ToList();
        var results = events.Where(e => e.Type == EventTypes.UserToolResult).GroupBy(e => e.ToolUseId ?? "", StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        int lost = 0, twice = 0, missing = 0, interrupted = 0;
        foreach (var use in uses)
        {
            var step = LedgerScenario.StepOf(use.Input is { } input && input.TryGetProperty("command", out var c) ? c.GetString() : null);
            var answers = results.GetValueOrDefault(use.Id ?? "") ?? [];
            if (answers.Count == 0)
            {
                lost++;
                details.Add($"{sessionId}: call {use.Id} (step {step}) has no result");
                continue;
            }

            if (answers.Count > 1)
            {
                twice += answers.Count - 1;
                details.Add($"{sessionId}: call {use.Id} (step {step}) has {answers.Count} results");
            }

            if (answers.Any(a => a.IsError == true && a.Text.Contains("interrupted", StringComparison.Ordinal)))
            {
                interrupted++;
            }
            else if (answers.All(a => a.IsError != true) && step is { } n && !lines.ContainsKey(LedgerScenario.Line(sessionId, n)))
            {
                missing++;
                details.Add($"{sessionId}: step {n} answered '{answers[0].Text}' but its ledger line is missing");
            }
            else if (answers.Any(a => a.IsError == true))
            {
                details.Add($"{sessionId}: step {step} failed: {answers[0].Text}");
            }
        }

        var executedTwice = 0;
        foreach (var (line, count) in lines.Where(l => l.Value > 1))
        {
            executedTwice += count - 1;
            details.Add($"{sessionId}: ledger line '{line}' appears {count} times");
        }

        var completed = uses.Count == steps && events.Any(e => e.Type == EventTypes.StatusIdle && e.StopReason?.Type == "end_turn");
        if (!completed)
        {
            details.Add($"{sessionId}: turn not completed ({uses.Count} of {steps} calls, {results.Count} answered); last events: "
                + string.Join(", ", events.TakeLast(6).Select(e => e.Type + (e.StopReason?.Type is { } r ? $"({r})" : ""))));
        }

        return new SessionAccount(sessionId, completed, uses.Count, lost, twice, executedTwice, missing, interrupted, replaced, details);
    }

    private TimeSpan Elapsed => Stopwatch.GetElapsedTime(_started);

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < _options.Sessions; i++)
        {
            await StartSessionAsync(cancellationToken).ConfigureAwait(false);
        }

        var taken = 0;
        foreach (var plan in _options.Faults)
        {
            if (taken++ >= _options.MaxFaults || Elapsed > _options.FaultWindow)
            {
                break;
            }

            await Task.Delay(plan.Before, _time, cancellationToken).ConfigureAwait(false);
            await InjectAsync(plan, cancellationToken).ConfigureAwait(false);
        }

        _windowOpen = false;
        _log($"+{Elapsed.TotalSeconds:0.0} s: {_outcomes.Faults.Count} faults injected; waiting for every turn to end (at most {_options.DrainTimeout.TotalSeconds:0} s)");
        await WaitUntilAsync(() => _watcher.Sessions.All(s => s.Ended), _options.DrainTimeout, TimeSpan.FromMilliseconds(250), cancellationToken).ConfigureAwait(false);
        _outcomes.Elapsed = Elapsed;
        var releasedAccounts = await Task.WhenAll(_released.Values).ConfigureAwait(false);
        _outcomes.Sessions.AddRange(releasedAccounts);
        foreach (var session in _watcher.Sessions.Where(s => !_released.ContainsKey(s.Id)))
        {
            _outcomes.Sessions.Add(await AccountSessionAsync(session.Id, cancellationToken).ConfigureAwait(false));
        }

        _outcomes.OrphansAfterRecovery.AddRange(await Patiently.RunAsync(_stack.FindOrphansAsync, _time, cancellationToken).ConfigureAwait(false));
        _log($"+{Elapsed.TotalSeconds:0.0} s: {_outcomes.Completed} of {_outcomes.Sessions.Count} sessions completed; tearing down");
    }

    private async Task StopAsync()
    {
        _windowOpen = false;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await _watcher.DisposeAsync().ConfigureAwait(false);
        foreach (var task in _background.Concat(_released.Values))
        {
            try
            {
                await task.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is OperationCanceledException or Hands.Common.HandsException or HttpRequestException or IOException)
            {
                // A failed run's background work, cut short: the run's own error is what is reported.
                _log($"background task ended: {ex.Message}");
            }
        }

        _stopping.Dispose();
    }

    private async Task<string> StartSessionAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _created);
        var session = await Patiently.RunAsync(_stack.CreateSessionAsync, _time, cancellationToken).ConfigureAwait(false);
        var message = await Patiently.RunAsync(ct => _stack.SendTurnAsync(session, ct), _time, cancellationToken).ConfigureAwait(false);
        _watcher.Watch(session, message, Stopwatch.GetTimestamp());
        return session;
    }

    private void OnTurnEnded(SessionProgress session)
    {
        if (!_options.KeepSessionsRunning || !_windowOpen || Volatile.Read(ref _created) >= MaxSessions)
        {
            return;
        }

        _background.Add(Task.Run(() => StartSessionAsync(_stopping.Token)));
        // Accounted, then its sandbox deleted: the soak's churn of sandboxes, and memory kept flat.
        _released[session.Id] = Task.Run(() => ReleaseAsync(session.Id, _stopping.Token));
    }

    private void OnFirstResult(SessionProgress session)
    {
        if (session.ToolResults == 1)
        {
            // The sandbox that served the first result: if another serves the session later, the first was lost (with its ledger and journal).
            _background.Add(Task.Run(async () =>
            {
                var sandbox = await Patiently.RunAsync(ct => _stack.Sandboxes.GetAsync(FaultStack.SandboxOf(session.Id), ct), _time, _stopping.Token).ConfigureAwait(false);
                _firstSandbox.TryAdd(session.Id, sandbox.CanonicalId);
            }));
        }
    }

    /// <summary>A completed session of a soak: once its worker stopped the item, it is accounted and its sandbox deleted.</summary>
    private async Task<SessionAccount> ReleaseAsync(string sessionId, CancellationToken cancellationToken)
    {
        // Deleting the sandbox under a worker that still holds the item would make the item lapse and be served again.
        await WaitUntilAsync(async () => await _stack.WorkStateAsync(sessionId, cancellationToken).ConfigureAwait(false) is WorkState.Stopped or null,
            _stack.Options.WorkerMaxIdle + (_stack.Options.LeaseTtl * 3) + TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(500), cancellationToken).ConfigureAwait(false);
        var account = await AccountSessionAsync(sessionId, cancellationToken).ConfigureAwait(false);
        await Patiently.RunAsync(ct => _stack.DeleteSandboxAsync(sessionId, ct), _time, cancellationToken).ConfigureAwait(false);
        return account;
    }

    /// <summary>Whether another sandbox than the one that served the session's first result serves it now (the first was lost).</summary>
    private async Task<bool> ReplacedSinceFirstResultAsync(string sessionId, CancellationToken cancellationToken)
    {
        if (!_firstSandbox.TryGetValue(sessionId, out var first))
        {
            return false;
        }

        try
        {
            var now = await Patiently.RunAsync(ct => _stack.Sandboxes.GetAsync(FaultStack.SandboxOf(sessionId), ct), _time, cancellationToken).ConfigureAwait(false);
            return now.CanonicalId != first;
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            return true;
        }
    }

    /// <summary>The session's account, marked replaced when the sandbox serving it is not the one that served its first result.</summary>
    private async Task<SessionAccount> AccountSessionAsync(string sessionId, CancellationToken cancellationToken)
    {
        var account = await AccountAsync(_stack, sessionId, _stack.Options.Steps, _time, cancellationToken).ConfigureAwait(false);
        return !account.SandboxReplaced && await ReplacedSinceFirstResultAsync(sessionId, cancellationToken).ConfigureAwait(false)
            ? account with { SandboxReplaced = true, Details = [.. account.Details, $"{sessionId}: another sandbox than the one that served its first result serves it now"] }
            : account;
    }

    private async Task InjectAsync(PlannedFault plan, CancellationToken cancellationToken)
    {
        var (reached, session) = await WaitForPointAsync(plan, cancellationToken).ConfigureAwait(false);
        var at = Elapsed;
        switch (plan.Kind)
        {
            case FaultKind.KillOrchestrator or FaultKind.KillControlPlane or FaultKind.KillEngine:
            {
                var process = plan.Kind switch
                {
                    FaultKind.KillOrchestrator => _stack.Orchestrator,
                    FaultKind.KillControlPlane => _stack.ControlPlane,
                    _ => _stack.Engine,
                };
                var pid = process.Pid;
                await process.KillAsync().ConfigureAwait(false);
                Record(plan, at, reached, $"{process.Name} pid {pid}{(session is null ? "" : $", session {session}")}");
                await Task.Delay(plan.Hold, _time, cancellationToken).ConfigureAwait(false);
                await process.StartAsync(cancellationToken).ConfigureAwait(false);
                break;
            }

            case FaultKind.KillWorker:
            {
                var target = session ?? _watcher.Sessions.Where(s => !s.Ended).Select(s => s.Id).OrderBy(_ => _rng.Next()).FirstOrDefault();
                if (target is null)
                {
                    _outcomes.FaultsNotInjected.Add($"{FaultOutcomes.Describe(plan.Kind)} at +{at.TotalSeconds:0.0} s: no session in flight");
                    return;
                }

                IReadOnlyList<int> pids = [];
                await WaitUntilAsync(async () => (pids = await TryKillWorkerAsync(target, cancellationToken).ConfigureAwait(false)).Count > 0,
                    WorkerAppears, TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
                if (pids.Count == 0)
                {
                    _outcomes.FaultsNotInjected.Add($"{FaultOutcomes.Describe(plan.Kind)} at +{at.TotalSeconds:0.0} s: no worker running in {target}'s sandbox");
                    return;
                }

                Record(plan, Elapsed, reached, $"session {target}, worker pid {string.Join(",", pids)} (in its sandbox)");
                break;
            }

            case FaultKind.Burst500 or FaultKind.Burst429:
            {
                var status = plan.Kind == FaultKind.Burst500 ? 500 : 429;
                _stack.OrchestratorProxy.Burst(status, plan.Hold);
                _stack.WorkerProxy.Burst(status, plan.Hold);
                Record(plan, at, reached, "every request of the workers and the orchestrator");
                await Task.Delay(plan.Hold, _time, cancellationToken).ConfigureAwait(false);
                break;
            }

            case FaultKind.NetworkCut:
                _stack.WorkerProxy.Cut(plan.Hold);
                Record(plan, at, reached, $"every worker (lease TTL {_stack.Options.LeaseTtl.TotalSeconds:0} s)");
                await Task.Delay(plan.Hold, _time, cancellationToken).ConfigureAwait(false);
                break;
        }
    }

    private async Task<IReadOnlyList<int>> TryKillWorkerAsync(string session, CancellationToken cancellationToken)
    {
        try
        {
            return await _stack.KillWorkerAsync(session, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is Hands.Common.HandsException or HttpRequestException)
        {
            return [];
        }
    }

    private void Record(PlannedFault plan, TimeSpan at, bool reached, string target)
    {
        var fault = new InjectedFault(plan, at, reached, target);
        _outcomes.Faults.Add(fault);
        _log(FaultOutcomes.Line(fault));
    }

    /// <summary>Waits for the fault's point; answers whether it was seen and the session it concerns.</summary>
    private async Task<(bool Reached, string? Session)> WaitForPointAsync(PlannedFault plan, CancellationToken cancellationToken)
    {
        switch (plan.Point)
        {
            case FaultPoint.DuringSpawn:
                return await DuringSpawnAsync(cancellationToken).ConfigureAwait(false);
            case FaultPoint.WhileStepRuns:
                return await WhileStepRunsAsync(cancellationToken).ConfigureAwait(false);
            case FaultPoint.AfterStep:
            {
                var next = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                void OnResult(SessionProgress s) => next.TrySetResult(s.Id);
                _watcher.ToolResult += OnResult;
                try
                {
                    return (true, await next.Task.WaitAsync(_options.PointTimeout, _time, cancellationToken).ConfigureAwait(false));
                }
                catch (TimeoutException)
                {
                    return (false, null);
                }
                finally
                {
                    _watcher.ToolResult -= OnResult;
                }
            }

            default:
                return (true, null);
        }
    }

    /// <summary>A session's sandbox has just appeared and its worker is not attached yet (no result so far).</summary>
    private async Task<(bool, string?)> DuringSpawnAsync(CancellationToken cancellationToken)
    {
        var existing = (await Patiently.RunAsync(_stack.ListSandboxesAsync, _time, cancellationToken).ConfigureAwait(false))
            .Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var candidates = _watcher.Sessions.Where(s => !s.Ended && s.ToolResults == 0 && !existing.Contains(FaultStack.SandboxOf(s.Id))).Select(s => s.Id).ToList();
        if (candidates.Count == 0 && _options.KeepSessionsRunning && Volatile.Read(ref _created) < MaxSessions)
        {
            // Nothing is being spawned now: start a session, whose spawn is then the point.
            candidates.Add(await StartSessionAsync(cancellationToken).ConfigureAwait(false));
        }

        if (candidates.Count == 0)
        {
            return (false, null);
        }

        string? found = null;
        await WaitUntilAsync(async () =>
        {
            var names = (await _stack.ListSandboxesAsync(cancellationToken).ConfigureAwait(false)).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
            found = candidates.FirstOrDefault(c => names.Contains(FaultStack.SandboxOf(c)));
            return found is not null;
        }, _options.PointTimeout, SpawnPoll, cancellationToken).ConfigureAwait(false);
        return (found is not null, found);
    }

    /// <summary>A session's step has written its ledger line and its result is not back yet: the command is in its sleep.</summary>
    private async Task<(bool, string?)> WhileStepRunsAsync(CancellationToken cancellationToken)
    {
        string? found = null;
        await WaitUntilAsync(async () =>
        {
            foreach (var session in _watcher.Sessions.Where(s => !s.Ended && s.PendingStep is not null).OrderBy(_ => _rng.Next()))
            {
                if (session.PendingStep is not { } step)
                {
                    continue;
                }

                var ledger = await _stack.ReadLedgerAsync(session.Id, cancellationToken).ConfigureAwait(false);
                if (ledger.Split('\n').Contains(LedgerScenario.Line(session.Id, step), StringComparer.Ordinal) && session.PendingStep == step)
                {
                    found = session.Id;
                    return true;
                }
            }

            return false;
        }, _options.PointTimeout, StepPoll, cancellationToken).ConfigureAwait(false);
        return (found is not null, found);
    }

    /// <summary>
    /// Polls <paramref name="condition"/> every <paramref name="every"/> until it holds or <paramref name="within"/> ran
    /// out (then it returns quietly: the caller reports what it saw). A check that fails for want of an answer counts as false.
    /// </summary>
    private async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan within, TimeSpan every, CancellationToken cancellationToken)
    {
        var deadline = _time.GetTimestamp() + (long)(within.TotalSeconds * _time.TimestampFrequency);
        var most = (int)Math.Ceiling(within / every) + 1;
        for (var check = 0; check < most && _time.GetTimestamp() < deadline; check++)
        {
            try
            {
                if (await condition().ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is Hands.Common.HandsException or HttpRequestException or IOException)
            {
                // Unavailable for a moment (a restart): not yet.
            }

            await Task.Delay(every, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task WaitUntilAsync(Func<bool> condition, TimeSpan within, TimeSpan every, CancellationToken cancellationToken) =>
        WaitUntilAsync(() => Task.FromResult(condition()), within, every, cancellationToken);
}
