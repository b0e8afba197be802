using System.Diagnostics;
using System.Security.Cryptography;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Forking;

/// <summary>
/// Best-of-N from one known-good state: checkpoint a sandbox, boot one child per branch from the snapshot (at most
/// <see cref="ForkExploreOptions.MaxParallelism"/> at once), run each branch's command in its child, judge it, and
/// report every branch in input order with the winner. Children are terminated and the snapshot deleted at the end,
/// on success, failure or cancellation alike, unless <see cref="ForkExploreOptions.Keep"/> is set.
/// </summary>
/// <remarks>
/// What a child inherits: the parent's files (both types); its memory and running processes (<c>memory</c> only, with
/// their connections cut: they reconnect); its exposed ports and their access setting; its network policy; its
/// resources. What it never inherits: the parent's id, name, address or connections, and no credential the provider
/// issued to the parent (see docs/fork-explore.md).
/// </remarks>
public sealed class ForkExplorer(TensorlakeClient sandboxes)
{
    private static readonly TimeSpan CleanupTimeout = TimeSpan.FromSeconds(60);

    /// <summary>Runs <paramref name="branches"/> from a checkpoint of <paramref name="parent"/> (an id or a name).</summary>
    /// <exception cref="ArgumentException">No branches, duplicate names, or invalid options.</exception>
    /// <exception cref="ForkExploreException">The parent is gone or the checkpoint failed (nothing is left behind).</exception>
    public async Task<ForkExploreResult> ExploreAsync(string parent, IReadOnlyList<ForkBranch> branches, ForkExploreOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(parent);
        ArgumentNullException.ThrowIfNull(branches);
        options ??= new ForkExploreOptions();
        options.Validate();
        ValidateBranches(branches);

        var clock = Stopwatch.StartNew();
        ForkExploreResult? result = null;
        try
        {
            result = await ExploreCoreAsync(parent, branches, options, clock, cancellationToken).ConfigureAwait(false);
            return result;
        }
        finally
        {
            var outcome = result is not null ? (result.Winner is null ? "no_winner" : "winner")
                : cancellationToken.IsCancellationRequested ? "cancelled" : "error";
            ForkTelemetry.RecordRun(outcome, options.SnapshotType, result?.Elapsed ?? clock.Elapsed, result?.Branches);
        }
    }

    private async Task<ForkExploreResult> ExploreCoreAsync(string parent, IReadOnlyList<ForkBranch> branches, ForkExploreOptions options, Stopwatch clock,
        CancellationToken cancellationToken)
    {
        var (parentInfo, resumed) = await ReadyParentAsync(parent, options, cancellationToken).ConfigureAwait(false);
        var parentId = parentInfo.CanonicalId;
        options.OnProgress?.Invoke($"checkpointing {parentId} ({options.SnapshotType})");
        var snapshotId = await CheckpointAsync(parentId, options, cancellationToken).ConfigureAwait(false);
        var checkpointTime = clock.Elapsed;

        var run = new ExplorationRun(sandboxes, parentInfo, snapshotId, branches, options, clock);
        try
        {
            await run.RunBranchesAsync(cancellationToken).ConfigureAwait(false);
            var elapsed = clock.Elapsed;
            var finished = run.Results;
            AdoptReport? adopted = null;
            if (options.Adopt && ForkExploreResult.PickBest(finished) is { SandboxId: { } winnerId } winner)
            {
                options.OnProgress?.Invoke($"adopting {winner.Name}'s changes under {options.AdoptDirectory} into {parentId}");
                adopted = await WinnerAdoption.AdoptAsync(sandboxes, winnerId, parentInfo, options.AdoptDirectory, run.Baseline(winner.Index), cancellationToken).ConfigureAwait(false);
            }

            return new ForkExploreResult
            {
                ParentId = parentId,
                SnapshotId = snapshotId,
                SnapshotType = options.SnapshotType,
                Branches = options.Keep ? [.. finished.Select(b => b.SandboxId is null ? b : b with { Kept = true })] : finished,
                ParentResumed = resumed,
                SnapshotKept = options.Keep,
                Adopted = adopted,
                CheckpointTime = checkpointTime,
                Elapsed = elapsed,
            };
        }
        finally
        {
            if (!options.Keep)
            {
                options.OnProgress?.Invoke("removing the children and the snapshot");
                await run.CleanUpAsync().ConfigureAwait(false);
            }
        }
    }

    private static void ValidateBranches(IReadOnlyList<ForkBranch> branches)
    {
        if (branches.Count == 0)
        {
            throw new ArgumentException("give at least one branch to explore (N = 0 would only snapshot and delete)", nameof(branches));
        }

        foreach (var branch in branches)
        {
            if (!ForkBranch.IsValidName(branch.Name))
            {
                throw new ArgumentException($"branch name '{branch.Name}' may hold only letters, digits, '-', '_' and '.' (at most 40)", nameof(branches));
            }

            if (string.IsNullOrWhiteSpace(branch.Command))
            {
                throw new ArgumentException($"branch '{branch.Name}' has no command", nameof(branches));
            }
        }

        var duplicate = branches.GroupBy(b => b.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
        {
            throw new ArgumentException($"branch name '{duplicate.Key}' is given {duplicate.Count()} times; names must be unique", nameof(branches));
        }
    }

    /// <summary>The parent, running: a suspended one is resumed first, a terminated one is an error.</summary>
    private async Task<(SandboxInfo Info, bool Resumed)> ReadyParentAsync(string parent, ForkExploreOptions options, CancellationToken cancellationToken)
    {
        SandboxInfo info;
        try
        {
            info = await sandboxes.GetAsync(parent, cancellationToken).ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.IsNotFound)
        {
            throw new ForkExploreException($"there is no sandbox '{parent}' to fork", 404, ex);
        }

        var resumed = false;
        switch (info.Status)
        {
            case SandboxStatus.Terminated:
                throw new ForkExploreException($"sandbox {info.CanonicalId} is terminated ({info.TerminationReason ?? "no reason given"}); a terminated sandbox cannot be forked", 409);
            case SandboxStatus.Suspended or SandboxStatus.Suspending:
                options.OnProgress?.Invoke($"resuming {info.CanonicalId} (it was {info.Status}) before the checkpoint");
                try
                {
                    await sandboxes.ResumeAsync(info.CanonicalId, cancellationToken).ConfigureAwait(false);
                }
                catch (TensorlakeException ex)
                {
                    throw ForkExploreException.From($"sandbox {info.CanonicalId} is suspended and could not be resumed", ex);
                }

                resumed = true;
                break;
        }

        if (info.Status != SandboxStatus.Running || resumed)
        {
            try
            {
                info = await sandboxes.WaitForStatusAsync(info.CanonicalId, [SandboxStatus.Running], TimeSpan.FromMinutes(2), TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            }
            catch (TensorlakeException ex)
            {
                throw ForkExploreException.From($"sandbox {info.CanonicalId} did not become running", ex);
            }
        }

        return (info, resumed);
    }

    /// <summary>Takes the snapshot and waits until it can be restored; on any failure no snapshot is left.</summary>
    private async Task<string> CheckpointAsync(string parentId, ForkExploreOptions options, CancellationToken cancellationToken)
    {
        string? snapshotId = null;
        try
        {
            snapshotId = (await sandboxes.SnapshotAsync(parentId, options.SnapshotType, cancellationToken).ConfigureAwait(false)).SnapshotId;
            await sandboxes.WaitForSnapshotAsync(snapshotId, options.SnapshotTimeout, TimeSpan.FromMilliseconds(50), cancellationToken).ConfigureAwait(false);
            return snapshotId;
        }
        catch (Exception ex) when (ex is TensorlakeException or OperationCanceledException)
        {
            if (snapshotId is not null)
            {
                await DeleteSnapshotQuietlyAsync(sandboxes, snapshotId).ConfigureAwait(false);
            }

            if (ex is TensorlakeException failure)
            {
                throw ForkExploreException.From(failure.Status == 507
                    ? $"the {options.SnapshotType} checkpoint of {parentId} did not fit on the provider's disk (nothing was kept; free space and retry)"
                    : $"the {options.SnapshotType} checkpoint of {parentId} failed (nothing was kept)", failure);
            }

            throw;
        }
    }

    /// <summary>
    /// Deletes a snapshot on a clean-up path; never throws. It answers 409 while a child still stands on it, and a
    /// child's delete may take a moment to land, so a 409 is retried (20 times, 250 ms apart).
    /// </summary>
    internal static async Task DeleteSnapshotQuietlyAsync(TensorlakeClient sandboxes, string snapshotId)
    {
        using var cts = new CancellationTokenSource(CleanupTimeout, sandboxes.Options.TimeProvider);
        try
        {
            await ForkResilience.BuildSnapshotDelete(sandboxes.Options.TimeProvider)
                .ExecuteAsync(async ct => await sandboxes.DeleteSnapshotAsync(snapshotId, ct).ConfigureAwait(false), cts.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TensorlakeException or OperationCanceledException or HttpRequestException)
        {
            // Best effort: the failure that brought us here is what the caller must see.
        }
    }

    /// <summary>A short random id tying one exploration's children together.</summary>
    internal static string NewRunId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
}
