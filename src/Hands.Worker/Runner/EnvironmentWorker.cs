using System.Diagnostics;
using Hands.Protocol;
using Hands.Protocol.Client;
using Hands.Protocol.Models;
using Hands.Worker.Hosting;
using Hands.Worker.Journal;
using Hands.Worker.MemoryStores;
using Hands.Worker.Skills;
using Hands.Worker.Telemetry;
using Hands.Worker.Tools;

namespace Hands.Worker.Runner;

/// <summary>
/// The environment worker, embeddable from C#: <see cref="HandleItemAsync"/> serves one claimed work item (what
/// <c>hands-worker run</c> does inside a sandbox), <see cref="RunAsync"/> polls and serves items in process
/// (<c>hands-worker poll</c>). Per item: heartbeat first, then the session, its skills, the tool runner, teardown,
/// and a force-stop of the item unless the lease was lost.
/// </summary>
public sealed class EnvironmentWorker(EnvironmentWorkerOptions options)
{
    private readonly WorkerLog _log = options.Log;

    public EnvironmentWorkerOptions Options => options;

    /// <summary>
    /// Serves one work item. Needs the environment key or a work secret carrying a sessions token. Unlike the official
    /// worker's <c>handleItem()</c>, it makes the item's <c>anthropic.environment.work</c> span (under
    /// <see cref="EnvironmentWorkerOptions.ParentContext"/>): this is <c>hands-worker run</c>, the whole job of a worker
    /// in a sandbox, and the span the orchestrator's trace continues in.
    /// </summary>
    public async Task<WorkItemOutcome> HandleItemAsync(string workId, string sessionId, string? workSecret, CancellationToken cancellationToken, string dataType = "session")
    {
        var span = WorkSpan.Start(options.Tracing, options.EnvironmentId, workId, sessionId, options.ParentContext);
        return await ServeAsync(workId, sessionId, workSecret, dataType, span, cancellationToken);
    }

    /// <summary>Serves one item under its work span (current from here on), and ends the span by the SDK's rules.</summary>
    private async Task<WorkItemOutcome> ServeAsync(string workId, string sessionId, string? workSecret, string dataType, Activity? span, CancellationToken cancellationToken)
    {
        if (span is not null)
        {
            Activity.Current = span;
        }

        Exception? failure = null;
        try
        {
            return await ServeCoreAsync(workId, sessionId, workSecret, dataType, span, e => failure = e, cancellationToken);
        }
        catch (Exception ex)
        {
            failure = ex; // for the span; the caller still gets it
            throw;
        }
        finally
        {
            if (failure is not null)
            {
                WorkSpan.Fail(span, cancellationToken.IsCancellationRequested, failure);
            }
            else
            {
                WorkSpan.Succeed(span, cancellationToken.IsCancellationRequested);
            }
        }
    }

    private async Task<WorkItemOutcome> ServeCoreAsync(string workId, string sessionId, string? workSecret, string dataType, Activity? span,
        Action<Exception> failed, CancellationToken cancellationToken)
    {
        var token = WorkSecretCodec.TryDecode(workSecret)?.SessionsToken;
        if (token is null && !string.IsNullOrEmpty(workSecret))
        {
            _log.Warn("work item carried a secret payload but no sessions token could be extracted; falling back to the environment key", ("work_id", workId));
        }

        var credential = token ?? options.EnvironmentKey;
        if (string.IsNullOrEmpty(credential))
        {
            throw new InvalidOperationException("neither a work secret with a sessions token nor an environment key was given (ANTHROPIC_WORK_SECRET or ANTHROPIC_ENVIRONMENT_KEY)");
        }

        using var client = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(credential), new ManagedAgentsClientOptions
        {
            BaseUrl = options.BaseUrl,
            Headers = { ["x-stainless-helper"] = "environments-worker" },
            Tracing = options.Tracing,
        });
        var lease = new LeaseKeeper(client, options.EnvironmentId, workId, _log, options.TimeProvider);
        using var itemCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var leaseTask = lease.RunAsync(itemCts.Token);
        using var work = CancellationTokenSource.CreateLinkedTokenSource(itemCts.Token, lease.Ended);
        var outcome = new WorkItemOutcome(workId, sessionId);
        SkillInstaller? skills = null;
        SessionMemoryStores? memory = null;
        var cleanEnd = false;
        IReadOnlyList<IWorkerTool> tools = [];
        var leaveToLapse = false;
        try
        {
            if (dataType != "session")
            {
                _log.Info("skipping non-session work item", ("work_id", workId), ("type", dataType));
                outcome.EndReason = "not a session item";
                return outcome;
            }

            var session = await client.Sessions.GetAsync(sessionId, work.Token);
            if (session.Status == SessionStatus.Terminated)
            {
                _log.Info("skipping the work item of a terminated session", ("work_id", workId), ("session_id", sessionId));
                outcome.EndReason = "session terminated";
                return outcome;
            }

            // The memory endpoints refuse the environment key: a session with stores and no sessions token cannot be served
            // with its memory, and is failed rather than run with amnesia (unless memory is turned off).
            if (token is null && options.MemorySyncInterval is not null && SessionMemoryStores.HasMemoryStore(session))
            {
                throw new SessionMemoryException(
                    $"cannot mount the session's memories: the work item carried no sessions token (work_id={workId}, session_id={sessionId}); " +
                    "the memory endpoints reject the environment key, so the poller must issue a per-item secret carrying sessions_token, or turn memory sync off (--no-memory-sync) to run without memory");
            }

            Directory.CreateDirectory(options.Workdir);
            var context = new ToolContext(options.Workdir, options.UnrestrictedPaths, options.MaxFileBytes);
            // The skills API refuses a sessions token: with the environment key (a worker outside a sandbox, or polling) it
            // downloads them; with the token alone it installs what the orchestrator staged.
            using var skillsClient = string.IsNullOrEmpty(options.EnvironmentKey) ? null : new ManagedAgentsClient(ManagedAgentsCredential.Bearer(options.EnvironmentKey), new ManagedAgentsClientOptions
            {
                BaseUrl = options.BaseUrl,
                Headers = { ["x-stainless-helper"] = "environments-worker" },
                Tracing = options.Tracing,
            });
            skills = new SkillInstaller(skillsClient ?? client, context.Workdir, _log);
            await skills.InstallAsync(session.Agent.Skills, work.Token);
            if (token is not null && options.MemorySyncInterval is { } interval)
            {
                memory = new SessionMemoryStores(client, context.Workdir, interval, options.MemorySyncDeletions, _log, options.TimeProvider);
                await memory.DownloadAsync(session, work.Token);
                // Stores mounted outside the workdir stay reachable by the file tools; read-only ones refuse writes.
                context.Paths.AllowedRoots.AddRange(memory.Roots);
                context.Paths.ReadOnlyRoots.AddRange(memory.ReadOnlyRoots);
            }
            else
            {
                _log.Debug("memory stores disabled for this item", ("work_id", workId));
            }

            using var owner = await JournalOwner.AcquireAsync(JournalPath(sessionId), lease.Ttl, _log, options.TimeProvider, work.Token);
            var journal = OpenJournal(sessionId);
            context.HelperProcessStarted = journal is null ? null : journal.ProcessStarted;
            tools = [.. Toolset.Create(context), .. options.ExtraTools?.Invoke(context) ?? []];
            var runner = new SessionToolRunner(client, sessionId, tools, options.MaxIdle, _log, () => lease.Ttl, timeProvider: null, journal);
            if (memory is not null)
            {
                runner.AfterToolCall = memory.SyncIfDueAsync;
            }

            await runner.RunAsync(work.Token);
            cleanEnd = !work.IsCancellationRequested;
            outcome.EndReason = lease.Ended.IsCancellationRequested ? "lease ended" : runner.EndReason;
            outcome.ResultsPosted = runner.Posted;
        }
        catch (OperationCanceledException) when (work.IsCancellationRequested)
        {
            outcome.EndReason = lease.Ended.IsCancellationRequested ? "lease ended" : "cancelled";
        }
        catch (ManagedAgentsException ex)
        {
            _log.Error("work item failed", ("work_id", workId), ("error", ex.Message));
            outcome.EndReason = "failed: " + ex.ErrorMessage;
            outcome.Failed = true;
            failed(ex);
        }
        catch (SessionMemoryException ex)
        {
            _log.Error("work item failed", ("work_id", workId), ("error", ex.Message));
            outcome.EndReason = "failed: " + ex.Message;
            outcome.Failed = true;
        }
        catch (JournalBusyException ex)
        {
            failed(ex);
            // Not stopped: the item lapses and is claimed again once the other worker has let go.
            _log.Error("work item not served", ("work_id", workId), ("error", ex.Message));
            outcome.EndReason = "not served: " + ex.Message;
            outcome.Failed = true;
            leaveToLapse = true;
        }
        finally
        {
            foreach (var tool in tools.OfType<IDisposable>())
            {
                tool.Dispose();
            }

            skills?.RemoveInstalled();
            if (memory is not null)
            {
                // The lease is still heartbeated here: the memory teardown runs before the heartbeat ends.
                await TearDownMemoryAsync(memory, cleanEnd, workId, sessionId);
            }

            await itemCts.CancelAsync();
            await leaseTask;
            outcome.LeaseLost = lease.Lost;
            if (lease.Lost || leaveToLapse)
            {
                _log.Info(lease.Lost ? "lease lost; released without stopping it" : "released without stopping it", ("work_id", workId));
            }
            else
            {
                try
                {
                    using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    await client.Work.StopAsync(options.EnvironmentId, workId, force: true, stopTimeout.Token);
                }
                catch (Exception ex) when (ex is ManagedAgentsException or OperationCanceledException)
                {
                    _log.Error("force-stop on exit failed", ("work_id", workId), ("error", ex.Message));
                }
            }

            _log.Info("work item done", ("work_id", workId), ("session_id", sessionId), ("reason", outcome.EndReason), ("results_posted", outcome.ResultsPosted));
            if (lease.Lost || lease.Rejected)
            {
                WorkSpan.Release(span); // the worker no longer holds the item: it neither finished with it nor failed
            }
        }

        return outcome;
    }

    /// <summary>
    /// Polls the environment's queue and serves each item in process until cancelled. An empty poll waits 1-3 s;
    /// errors back off exponentially up to 60 s; a fatal 4xx ends the loop with <see cref="ManagedAgentsException"/>.
    /// With <paramref name="onWork"/>, each acked item is handed to it instead (and stopped after it returns).
    /// </summary>
    public async Task RunAsync(CancellationToken cancellationToken, Func<WorkItem, CancellationToken, Task>? onWork = null)
    {
        if (string.IsNullOrEmpty(options.EnvironmentKey))
        {
            throw new InvalidOperationException("polling needs the environment key (--environment-key or ANTHROPIC_ENVIRONMENT_KEY)");
        }

        using var poller = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(options.EnvironmentKey), new ManagedAgentsClientOptions
        {
            BaseUrl = options.BaseUrl,
            MaxRetries = 0,
            Headers = { ["x-stainless-helper"] = "environments-work-poller" },
            Tracing = options.Tracing,
        });
        _log.Info("poller starting", ("environment_id", options.EnvironmentId), ("worker_id", options.WorkerId));
        var pollRetry = WorkerResilience.BuildWorkPoll(options.TimeProvider, _log);
        while (!cancellationToken.IsCancellationRequested)
        {
            WorkItem? item;
            try
            {
                item = await pollRetry.ExecuteAsync(async ct =>
                    await poller.Work.PollAsync(options.EnvironmentId, 999, workerId: options.WorkerId, cancellationToken: ct), cancellationToken);
            }
            catch (ManagedAgentsException ex) when (ex.IsFatal)
            {
                _log.Error("poll failed permanently, stopping poller", ("status", ex.Status), ("error", ex.ErrorMessage));
                throw;
            }

            if (item is null)
            {
                // An empty queue is not a failure: a pause between polls, not a retry.
                await Task.Delay(TimeSpan.FromMilliseconds(1000 + Random.Shared.Next(2000)), options.TimeProvider, cancellationToken);
                continue;
            }

            _log.Info("claimed work", ("environment_id", options.EnvironmentId), ("work_id", item.Id), ("work_type", item.Data.Type));
            // The item's span starts now, before the ack, under what is current here (the caller's context: with none,
            // each item is a trace of its own). The ack, like the poll, is its sibling, not its child, as in the SDK's poller.
            var caller = Activity.Current;
            var span = WorkSpan.Start(options.Tracing, string.IsNullOrEmpty(item.EnvironmentId) ? options.EnvironmentId : item.EnvironmentId, item.Id, item.Data.Id);
            Activity.Current = caller;
            try
            {
                await poller.Work.AckAsync(options.EnvironmentId, item.Id, cancellationToken);
            }
            catch (ManagedAgentsException ex)
            {
                WorkSpan.Fail(span, cancellationToken.IsCancellationRequested, ex);
                _log.Error("ack failed", ("work_id", item.Id), ("error", ex.ErrorMessage));
                continue;
            }
            catch (OperationCanceledException ex)
            {
                WorkSpan.Fail(span, aborted: true, ex);
                throw;
            }

            try
            {
                await ServeClaimedAsync(poller, item, span, onWork, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // one failing item must not kill the poll loop
                _log.Error("work item failed", ("work_id", item.Id), ("error", ex.Message));
            }
        }
    }

    /// <summary>Serves an acked item under its span (current here), in process or through <c>--on-work</c>, and ends the span.</summary>
    private async Task ServeClaimedAsync(ManagedAgentsClient poller, WorkItem item, Activity? span, Func<WorkItem, CancellationToken, Task>? onWork,
        CancellationToken cancellationToken)
    {
        if (onWork is null && item.Data.Type == "session")
        {
            await ServeAsync(item.Id, item.Data.Id, item.Secret, item.Data.Type, span, cancellationToken);
            return;
        }

        if (span is not null)
        {
            Activity.Current = span;
        }

        try
        {
            if (item.Data.Type != "session")
            {
                _log.Info("skipping non-session work item", ("work_id", item.Id), ("type", item.Data.Type));
                await StopQuietlyAsync(poller, item.Id, force: true);
            }
            else
            {
                await onWork!(item, cancellationToken);
                await StopQuietlyAsync(poller, item.Id, force: false);
            }
        }
        catch (Exception ex)
        {
            WorkSpan.Fail(span, cancellationToken.IsCancellationRequested, ex);
            throw;
        }

        WorkSpan.Succeed(span, cancellationToken.IsCancellationRequested);
    }

    private async Task StopQuietlyAsync(ManagedAgentsClient poller, string workId, bool force)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30), options.TimeProvider);
            await poller.Work.StopAsync(options.EnvironmentId, workId, force, timeout.Token);
        }
        catch (Exception ex) when (ex is ManagedAgentsException or OperationCanceledException)
        {
            _log.Warn("stop failed", ("work_id", workId), ("error", ex.Message));
        }
    }

    /// <summary>
    /// The official teardown: the final full sync after a clean end, then a push-only flush, each bounded by
    /// <see cref="SessionMemoryStores.FlushTimeout"/> (a warning when the bound cuts work off), then the folders are removed.
    /// </summary>
    private async Task TearDownMemoryAsync(SessionMemoryStores memory, bool cleanEnd, string workId, string sessionId)
    {
        var bound = SessionMemoryStores.FlushTimeout;
        if (cleanEnd)
        {
            using var finishBound = new CancellationTokenSource(bound, options.TimeProvider);
            try
            {
                await memory.FinishAsync(finishBound.Token);
            }
            catch (OperationCanceledException)
            {
            }

            if (finishBound.IsCancellationRequested)
            {
                _log.Warn($"final memory sync cut off after {bound.TotalMilliseconds:0}ms; the flush that follows still uploads changed files", ("session_id", sessionId), ("work_id", workId));
            }
        }

        using (var flushBound = new CancellationTokenSource(bound, options.TimeProvider))
        {
            await memory.FlushWritesAsync(flushBound.Token);
            if (flushBound.IsCancellationRequested)
            {
                _log.Warn($"memory flush cut off after {bound.TotalMilliseconds:0}ms; changed files it had not uploaded yet are not saved", ("session_id", sessionId), ("work_id", workId));
            }
        }

        memory.Dispose();
    }

    /// <summary>The session's tool-call journal; null (with a warning) when it cannot be opened, so the session is still served.</summary>
    private string JournalPath(string sessionId) => ToolCallJournal.PathFor(Path.Combine(options.StateDirectory, "journal"), sessionId);

    private ToolCallJournal? OpenJournal(string sessionId)
    {
        var path = JournalPath(sessionId);
        try
        {
            return ToolCallJournal.Open(path, _log, options.TimeProvider);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _log.Warn("journal: cannot open it; tool calls run without the at-most-once record", ("path", path), ("error", ex.Message));
            return null;
        }
    }
}

/// <summary>How serving one work item ended.</summary>
public sealed class WorkItemOutcome(string workId, string sessionId)
{
    public string WorkId { get; } = workId;
    public string SessionId { get; } = sessionId;
    public string? EndReason { get; set; }
    public bool LeaseLost { get; set; }
    public bool Failed { get; set; }
    public int ResultsPosted { get; set; }
}
