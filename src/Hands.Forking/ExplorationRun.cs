using System.Diagnostics;
using System.Globalization;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>
/// One exploration's branches after the checkpoint: bounded-parallel fork → run → judge, the live state of each
/// branch, and the record of every child it asked for (by name, so cleanup finds a child whose create answer was lost).
/// </summary>
internal sealed class ExplorationRun
{
    private readonly TensorlakeClient _sandboxes;
    private readonly SandboxInfo _parent;
    private readonly string _snapshotId;
    private readonly IReadOnlyList<ForkBranch> _branches;
    private readonly ForkExploreOptions _options;
    private readonly BranchResult[] _results;
    private readonly string?[] _childNames;
    private readonly IReadOnlyDictionary<string, FileManifest.Entry>?[] _baselines;
    private readonly Lock _gate = new();
    private readonly HashSet<int> _released = [];

    private readonly Stopwatch _clock;

    public ExplorationRun(TensorlakeClient sandboxes, SandboxInfo parent, string snapshotId, IReadOnlyList<ForkBranch> branches, ForkExploreOptions options, Stopwatch clock)
    {
        _clock = clock;
        _sandboxes = sandboxes;
        _parent = parent;
        _snapshotId = snapshotId;
        _branches = branches;
        _options = options;
        _results = [.. branches.Select((b, i) => new BranchResult { Index = i, Name = b.Name, State = BranchState.Queued })];
        _childNames = new string?[branches.Count];
        _baselines = new IReadOnlyDictionary<string, FileManifest.Entry>?[branches.Count];
        RunId = ForkExplorer.NewRunId();
    }

    public string RunId { get; }

    /// <summary>The clock of the run's waits and deadlines: the provider client's, so one fake clock drives both.</summary>
    private TimeProvider Time => _sandboxes.Options.TimeProvider;

    /// <summary>The branches' current states, in input order.</summary>
    public IReadOnlyList<BranchResult> Results
    {
        get
        {
            lock (_gate)
            {
                return [.. _results];
            }
        }
    }

    /// <summary>The adopt directory as the child saw it before its command ran (only with <see cref="ForkExploreOptions.Adopt"/>).</summary>
    public IReadOnlyDictionary<string, FileManifest.Entry> Baseline(int index) =>
        _baselines[index] ?? throw new InvalidOperationException($"branch {index} has no baseline");

    public async Task RunBranchesAsync(CancellationToken cancellationToken)
    {
        foreach (var result in Results)
        {
            _options.OnBranchChanged?.Invoke(result);
        }

        using var slots = new SemaphoreSlim(_options.MaxParallelism ?? _branches.Count);
        var tasks = _branches.Select((branch, index) => RunBranchAsync(branch, index, slots, cancellationToken)).ToList();
        await Task.WhenAll(tasks).ConfigureAwait(false);
    }

    private async Task RunBranchAsync(ForkBranch branch, int index, SemaphoreSlim slots, CancellationToken cancellationToken)
    {
        try
        {
            await slots.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                var child = await ForkAsync(index, cancellationToken).ConfigureAwait(false);
                if (child is null)
                {
                    return;
                }

                var proxy = _sandboxes.Proxy(child);
                if (_options.Adopt)
                {
                    _baselines[index] = await FileManifest.ReadAsync(proxy, _options.AdoptDirectory, cancellationToken).ConfigureAwait(false);
                }

                await RunAndJudgeAsync(branch, index, proxy, cancellationToken).ConfigureAwait(false);
                await ReleaseFinishedChildrenAsync(cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                slots.Release();
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // A branch that already finished keeps its verdict (cancellation may land while finished children are freed).
            Update(index, r => r.IsFinished ? r : r with { State = BranchState.Cancelled, Error = "the exploration was cancelled" });
            throw;
        }
        catch (Exception ex) when (ex is TensorlakeException or HttpRequestException or IOException or OperationCanceledException or FormatException)
        {
            Update(index, r => r.IsFinished ? r : r with { State = BranchState.Error, Error = ex is TensorlakeException t ? t.ErrorMessage : ex.Message });
        }
    }

    /// <summary>Boots the branch's child from the snapshot, waiting (queued) while the provider is at capacity.</summary>
    private async Task<SandboxInfo?> ForkAsync(int index, CancellationToken cancellationToken)
    {
        var name = $"{_options.ChildNamePrefix}-{RunId}-{index.ToString(CultureInfo.InvariantCulture)}";
        var request = new CreateSandboxRequest
        {
            SnapshotId = _snapshotId,
            Name = name,
            Resources = null,
            TimeoutSecs = _parent.TimeoutSecs,
            // Stated, not left to the provider's defaults: a child keeps the parent's egress policy and port access.
            Network = _parent.Network ?? _parent.NetworkPolicyAlias,
            ExposedPorts = _parent.ExposedPorts.Count > 0 ? [.. _parent.ExposedPorts] : null,
            AllowUnauthenticatedAccess = _parent.AllowUnauthenticatedAccess ? true : null,
        };
        var capacity = ForkResilience.BuildCapacityWait(Time, Time.GetUtcNow() + _options.CapacityWait,
            ex => Update(index, r => r with { State = BranchState.Queued, Error = "waiting for capacity: " + ex.ErrorMessage }));
        var clock = Stopwatch.StartNew();
        try
        {
            return await capacity.ExecuteAsync(async ct =>
            {
                Update(index, r => r with { State = BranchState.Forking });
                _childNames[index] = name;
                var created = await _sandboxes.CreateAsync(request, ct).ConfigureAwait(false);
                var childId = created.SandboxId ?? created.Id ?? name;
                var child = created.Status == SandboxStatus.Running
                    ? await _sandboxes.GetAsync(childId, ct).ConfigureAwait(false)
                    : await _sandboxes.WaitForStatusAsync(childId, [SandboxStatus.Running], TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(100), ct).ConfigureAwait(false);
                Update(index, r => r with { SandboxId = child.CanonicalId, ForkTime = clock.Elapsed });
                return child;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.Status == 429)
        {
            Update(index, r => r with { State = BranchState.Error, Error = $"no capacity within {_options.CapacityWait.TotalSeconds:0} s: {ex.ErrorMessage}" });
            return null;
        }
    }

    private async Task RunAndJudgeAsync(ForkBranch branch, int index, SandboxProxyClient proxy, CancellationToken cancellationToken)
    {
        Update(index, r => r with { State = BranchState.Running, Error = null });
        var timeout = _options.BranchTimeout;
        var request = new RunProcessRequest
        {
            Command = "sh",
            Args = ["-c", branch.Command],
            Env = branch.Environment.Count == 0 ? null : new Dictionary<string, string>(branch.Environment),
            WorkingDir = branch.WorkingDirectory,
            // The daemon kills the command at the deadline; the client-side one below only guards a daemon that did not.
            Timeout = timeout.TotalSeconds,
        };
        using var guard = new CancellationTokenSource(timeout + TimeSpan.FromSeconds(5), Time);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, guard.Token);
        var clock = Stopwatch.StartNew();
        CommandResult outcome;
        try
        {
            outcome = await proxy.RunAsync(request, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Update(index, r => r with { State = BranchState.TimedOut, Elapsed = clock.Elapsed, Error = $"killed after the {Seconds(timeout)} timeout" });
            return;
        }

        var elapsed = clock.Elapsed;
        var stdout = Tail(outcome.Stdout);
        var stderr = Tail(outcome.Stderr);
        if (outcome.Signal is not null && elapsed >= timeout - TimeSpan.FromMilliseconds(100))
        {
            Update(index, r => r with { State = BranchState.TimedOut, ExitCode = outcome.ExitCode, Elapsed = elapsed, Stdout = stdout, Stderr = stderr, Error = $"killed after the {Seconds(timeout)} timeout" });
            return;
        }

        double score;
        try
        {
            score = _options.Judge(new BranchRun(branch, outcome.ExitCode, outcome.Stdout, outcome.Stderr, elapsed));
        }
#pragma warning disable CA1031 // A judge is user code: whatever it throws fails its branch, not the exploration.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            Update(index, r => r with { State = BranchState.Failed, ExitCode = outcome.ExitCode, Elapsed = elapsed, Stdout = stdout, Stderr = stderr, Error = $"the judge threw {ex.GetType().Name}: {ex.Message}" });
            return;
        }

        var passed = score > 0 && !double.IsNaN(score);
        Update(index, r => r with
        {
            State = passed ? BranchState.Passed : BranchState.Failed,
            ExitCode = outcome.ExitCode,
            Elapsed = elapsed,
            Score = double.IsNaN(score) ? 0 : score,
            Stdout = stdout,
            Stderr = stderr,
            Error = passed ? null : outcome.ExitCode == 0 ? $"the judge scored it {score.ToString(CultureInfo.InvariantCulture)}" : $"exit code {outcome.ExitCode}",
        });
    }

    /// <summary>
    /// Frees capacity while the run goes on: a finished child is terminated at once unless it is kept, or it is the
    /// best so far and adoption may need its files. So N above the provider's capacity queues and then completes.
    /// </summary>
    private async Task ReleaseFinishedChildrenAsync(CancellationToken cancellationToken)
    {
        if (_options.Keep)
        {
            return;
        }

        List<string> release;
        lock (_gate)
        {
            var best = _options.Adopt ? ForkExploreResult.PickBest(_results.Where(r => r.IsFinished)) : null;
            release = [.. _results.Where(r => r.IsFinished && r.SandboxId is not null && r.Index != best?.Index && !_released.Contains(r.Index))
                .Select(r => { _released.Add(r.Index); return r.SandboxId!; })];
        }

        foreach (var child in release)
        {
            try
            {
                await _sandboxes.DeleteAsync(child, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is TensorlakeException or HttpRequestException)
            {
                // The final clean-up tries again.
            }
        }
    }

    /// <summary>Terminates every child this run asked for (by id, else by name) and deletes the snapshot; never throws.</summary>
    public async Task CleanUpAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60), Time);
        var results = Results;
        var deletions = _childNames
            .Select((name, index) => results[index].SandboxId ?? name)
            .OfType<string>()
            .Select(async idOrName =>
            {
                try
                {
                    await _sandboxes.DeleteAsync(idOrName, cts.Token).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is TensorlakeException or HttpRequestException or OperationCanceledException)
                {
                    // A 404 is a child that never came to be; the snapshot's 409 retries cover a slow delete.
                }
            });
        await Task.WhenAll(deletions).ConfigureAwait(false);
        await ForkExplorer.DeleteSnapshotQuietlyAsync(_sandboxes, _snapshotId).ConfigureAwait(false);
    }

    private void Update(int index, Func<BranchResult, BranchResult> change)
    {
        BranchResult changed;
        lock (_gate)
        {
            changed = change(_results[index]);
            if (changed.IsFinished && changed.FinishedAfter is null)
            {
                changed = changed with { FinishedAfter = _clock.Elapsed };
            }

            _results[index] = changed;
        }

        _options.OnBranchChanged?.Invoke(changed);
    }

    private string Tail(string text) => text.Length <= _options.MaxOutputChars ? text : text[^_options.MaxOutputChars..];

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture) + " s";
}
