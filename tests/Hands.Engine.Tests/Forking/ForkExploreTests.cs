using System.Globalization;
using System.Text;
using Hands.Forking;
using Hands.Testing;
using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Forking;

/// <summary>Fork-and-explore on real sandboxes: divergence, failures as results, clean-up, adoption, bad input.</summary>
[Collection(EngineCollection.Name)]
public sealed class ForkExploreTests(EngineFixture engine)
{
    private ForkExplorer Explorer => new(engine.Client);

    [Fact]
    public async Task Filesystem_forks_diverge_independently_and_leave_nothing_behind()
    {
        await using var parent = await engine.CreateAsync();
        await parent.Proxy.WriteFileAsync("/workspace/base.txt", Encoding.UTF8.GetBytes("from-parent\n"));
        var prefix = SandboxWorkloads.UniqueName("fsfork");
        ForkBranch[] branches = [.. Enumerable.Range(0, 3).Select(i => new ForkBranch($"b{i}", $"echo {i} > /workspace/mine.txt && cat /workspace/base.txt && ls /workspace | tr '\\n' ' '"))];

        var result = await Explorer.ExploreAsync(parent.Id, branches, new ForkExploreOptions { ChildNamePrefix = prefix });

        Assert.Equal(["b0", "b1", "b2"], result.Branches.Select(b => b.Name));
        Assert.All(result.Branches, b => Assert.Equal(BranchState.Passed, b.State));
        Assert.Equal(3, result.Branches.Select(b => b.SandboxId).Distinct().Count());
        foreach (var branch in result.Branches)
        {
            Assert.StartsWith("from-parent\n", branch.Stdout, StringComparison.Ordinal);
            Assert.Contains("mine.txt", branch.Stdout, StringComparison.Ordinal);
        }

        var parentFiles = await parent.RunAsync("ls /workspace");
        Assert.DoesNotContain("mine.txt", parentFiles.Stdout, StringComparison.Ordinal);
        await AssertNothingLeftAsync(prefix, result.SnapshotId);
    }

    [Fact]
    public async Task Memory_forks_resume_the_parents_counter_diverge_and_drop_marked_processes()
    {
        Assert.True(engine.Engine.CriuAvailable, engine.Engine.CriuProblem);
        await using var parent = await engine.CreateAsync(SandboxWorkloads.Exposed());
        await SandboxWorkloads.StartCounterAsync(engine.Engine, parent, count: 3);

        // A process holding credentials is marked; its copy must not run in any fork.
        await parent.Proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["4242"], Env = new() { ["HANDS_FORK_POLICY"] = "terminate" } });
        await parent.Proxy.StartProcessAsync(new StartProcessRequest { Command = "sleep", Args = ["4343"] });
        var prefix = SandboxWorkloads.UniqueName("memfork");
        const string Running = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep {0}' || true";
        ForkBranch[] branches = [.. Enumerable.Range(0, 3).Select(i => new ForkBranch($"c{i}",
            $"for n in $(seq {i + 1}); do python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:{SandboxWorkloads.CounterPort}/inc').read()\"; done; "
            + $"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{SandboxWorkloads.CounterPort}/').read().decode())\"; "
            + string.Format(CultureInfo.InvariantCulture, Running, 4242) + "; " + string.Format(CultureInfo.InvariantCulture, Running, 4343)))];

        var result = await Explorer.ExploreAsync(parent.Id, branches, new ForkExploreOptions { SnapshotType = SnapshotType.Memory, ChildNamePrefix = prefix });

        for (var i = 0; i < 3; i++)
        {
            var branch = result.Branches[i];
            Assert.True(branch.Passed, $"{branch.Name}: {branch.State} {branch.Error} {branch.Stderr}");
            var lines = branch.Stdout.Split('\n');
            Assert.Equal((3 + i + 1).ToString(CultureInfo.InvariantCulture), lines[0]);
            Assert.Equal("0", lines[1]); // the marked process was killed before the fork's network came up
            Assert.Equal("1", lines[2]); // an unmarked one resumed
        }

        Assert.Equal(3, await SandboxWorkloads.CounterAsync(engine.Engine, parent.Id, "/"));
        var stillThere = await parent.RunAsync(string.Format(CultureInfo.InvariantCulture, Running, 4242));
        Assert.Equal("1", stillThere.Stdout.Trim()); // the parent keeps its own
        await AssertNothingLeftAsync(prefix, result.SnapshotId);
    }

    [Fact]
    public async Task Failing_hanging_and_misjudged_branches_are_results_and_cleanup_is_complete()
    {
        await using var parent = await engine.CreateAsync();
        var prefix = SandboxWorkloads.UniqueName("failfork");
        ForkBranch[] branches =
        [
            new("pass", "echo fine"),
            new("fail", "echo broken >&2; exit 3"),
            new("hang", "sleep 600"),
            new("boom", "echo judged"),
        ];
        var judged = new List<string>();
        var options = new ForkExploreOptions
        {
            ChildNamePrefix = prefix,
            MaxParallelism = 2,
            BranchTimeout = TimeSpan.FromSeconds(3),
            Judge = run =>
            {
                lock (judged)
                {
                    judged.Add(run.Branch.Name);
                }

                return run.Branch.Name == "boom" ? throw new InvalidOperationException("judge bug") : BranchJudges.ExitCode(run);
            },
        };

        using var metrics = new MetricCapture("hands.fork.runs", "hands.fork.run.duration", "hands.fork.branches");
        var result = await Explorer.ExploreAsync(parent.Id, branches, options);

        Assert.Equal([BranchState.Passed, BranchState.Failed, BranchState.TimedOut, BranchState.Failed], result.Branches.Select(b => b.State));
        // The run and each branch, counted as they ended (this collection runs one test at a time, so nothing else forks).
        var run = Assert.Single(metrics.Of("hands.fork.runs"));
        Assert.Equal(("winner", "filesystem"), (run.Tags["hands.outcome"], run.Tags["hands.snapshot.type"]));
        Assert.Equal(result.Elapsed.TotalSeconds, Assert.Single(metrics.Of("hands.fork.run.duration", ("hands.outcome", "winner"))).Value, 6);
        Assert.Equal(1, metrics.Sum("hands.fork.branches", ("hands.fork.branch.state", "passed")));
        Assert.Equal(2, metrics.Sum("hands.fork.branches", ("hands.fork.branch.state", "failed")));
        Assert.Equal(1, metrics.Sum("hands.fork.branches", ("hands.fork.branch.state", "timed_out")));
        Assert.Equal(3, result.Branches[1].ExitCode);
        Assert.Contains("broken", result.Branches[1].Stderr, StringComparison.Ordinal);
        Assert.Contains("timeout", result.Branches[2].Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hang", judged);
        Assert.Contains("judge bug", result.Branches[3].Error, StringComparison.Ordinal);
        Assert.Equal("pass", result.Winner?.Name);
        await AssertNothingLeftAsync(prefix, result.SnapshotId);
    }

    [Fact]
    public async Task The_fastest_passing_fix_wins_and_is_adopted_into_the_parent()
    {
        await using var parent = await engine.CreateAsync();
        await parent.Proxy.WriteFileAsync("/workspace/add.sh", Encoding.UTF8.GetBytes("echo $(($1 - $2))\n"));
        await parent.Proxy.WriteFileAsync("/workspace/test.sh", Encoding.UTF8.GetBytes("test \"$(sh add.sh 2 3)\" = 5\n"));
        await parent.Proxy.WriteFileAsync("/workspace/notes.txt", Encoding.UTF8.GetBytes("scratch"));
        var prefix = SandboxWorkloads.UniqueName("adopt");
        ForkBranch[] branches =
        [
            new("wrong", "echo 'echo $(($1 * $2))' > add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
            new("slow", "sleep 2; echo 'echo $(($1 + $2))' > add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
            new("fast", "printf 'echo $(($1 + $2))\\n' > add.sh && mkdir -p lib && echo helper > lib/new.txt && rm notes.txt && ln -s add.sh latest && echo odd > 'odd name.txt' && sh test.sh") { WorkingDirectory = "/workspace" },
        ];

        var result = await Explorer.ExploreAsync(parent.Id, branches, new ForkExploreOptions { ChildNamePrefix = prefix, Adopt = true, AdoptDirectory = "/workspace" });

        Assert.Equal([BranchState.Failed, BranchState.Passed, BranchState.Passed], result.Branches.Select(b => b.State));
        Assert.Equal("fast", result.Winner?.Name);
        Assert.NotNull(result.Adopted);
        Assert.Equal(["add.sh", "latest", "lib/new.txt", "odd name.txt"], result.Adopted.Copied);
        Assert.Equal(["notes.txt"], result.Adopted.Deleted);
        var home = await parent.RunAsync("cd /workspace && sh test.sh && echo passes; cat lib/new.txt; test -e notes.txt && echo notes-kept || echo notes-gone; readlink latest; cat 'odd name.txt'; ls /tmp | grep -c hands- || true");
        Assert.Equal("passes\nhelper\nnotes-gone\nadd.sh\nodd\n0", home.Stdout.Trim());
        await AssertNothingLeftAsync(prefix, result.SnapshotId);
    }

    [Fact]
    public async Task Bad_input_is_refused_and_a_suspended_parent_is_resumed_first()
    {
        await using var parent = await engine.CreateAsync(new CreateSandboxRequest { Name = SandboxWorkloads.UniqueName("parent") });
        using var metrics = new MetricCapture("hands.fork.runs");
        await Assert.ThrowsAsync<ArgumentException>(() => Explorer.ExploreAsync(parent.Id, []));
        await Assert.ThrowsAsync<ArgumentException>(() => Explorer.ExploreAsync(parent.Id, [new("a", "true"), new("a", "false")]));
        await Assert.ThrowsAsync<ArgumentException>(() => Explorer.ExploreAsync(parent.Id, [new("a", "true")], new ForkExploreOptions { MaxParallelism = 0 }));
        var missing = await Assert.ThrowsAsync<ForkExploreException>(() => Explorer.ExploreAsync("no-such-sandbox", [new("a", "true")]));
        Assert.Equal(404, missing.Status);
        // Refused input is no run; a run whose parent is missing is one, ended in error.
        Assert.Equal("error", Assert.Single(metrics.Of("hands.fork.runs")).Tags["hands.outcome"]);

        Assert.True(await engine.Client.SuspendAsync(parent.Id));
        await engine.Client.WaitForStatusAsync(parent.Id, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(50));
        var prefix = SandboxWorkloads.UniqueName("resumed");
        var result = await Explorer.ExploreAsync(parent.Id, [new("a", "true")], new ForkExploreOptions { ChildNamePrefix = prefix });
        Assert.True(result.ParentResumed);
        Assert.True(result.Branches[0].Passed);
        await AssertNothingLeftAsync(prefix, result.SnapshotId);

        await engine.Client.DeleteAsync(parent.Id);
        var gone = await Assert.ThrowsAsync<ForkExploreException>(() => Explorer.ExploreAsync(parent.Id, [new("a", "true")]));
        Assert.Contains("terminated", gone.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Branches_over_the_engines_capacity_wait_in_the_queue_instead_of_failing()
    {
        await using var parent = await engine.CreateAsync();
        var live = 0;
        await foreach (var sandbox in engine.Client.ListAllAsync(SandboxStatus.Running))
        {
            live++;
        }

        var saved = engine.RunningOptions.MaxSandboxes;
        engine.RunningOptions.MaxSandboxes = live + 2;
        var prefix = SandboxWorkloads.UniqueName("capacity");
        var queued = new HashSet<string>();
        try
        {
            var result = await Explorer.ExploreAsync(parent.Id, [.. Enumerable.Range(0, 4).Select(i => new ForkBranch($"q{i}", "sleep 1"))], new ForkExploreOptions
            {
                ChildNamePrefix = prefix,
                CapacityWait = TimeSpan.FromSeconds(60),
                OnBranchChanged = b =>
                {
                    if (b is { State: BranchState.Queued, Error: not null })
                    {
                        lock (queued)
                        {
                            queued.Add(b.Name);
                        }
                    }
                },
            });
            Assert.All(result.Branches, b => Assert.True(b.Passed, $"{b.Name}: {b.State} {b.Error}"));
            Assert.NotEmpty(queued);
            await AssertNothingLeftAsync(prefix, result.SnapshotId);
        }
        finally
        {
            engine.RunningOptions.MaxSandboxes = saved;
        }
    }

    [Fact]
    public async Task Cancelling_mid_run_removes_every_child_and_the_snapshot()
    {
        await using var parent = await engine.CreateAsync();
        var prefix = SandboxWorkloads.UniqueName("cancel");
        using var cts = new CancellationTokenSource();
        string? snapshot = null;
        var options = new ForkExploreOptions
        {
            ChildNamePrefix = prefix,
            OnBranchChanged = b =>
            {
                if (b.State == BranchState.Running)
                {
                    cts.CancelAfter(TimeSpan.FromMilliseconds(300));
                }
            },
            OnProgress = _ => { },
        };
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Explorer.ExploreAsync(parent.Id, [new("a", "sleep 600"), new("b", "sleep 600")], options, cts.Token));
        snapshot = (await engine.Client.ListSnapshotsAsync()).FirstOrDefault(s => s.SandboxId == parent.Id)?.CanonicalId;
        Assert.Null(snapshot);
        await AssertNothingLeftAsync(prefix, null);
    }

    [Fact]
    public async Task A_fork_key_forks_its_own_sandbox_and_nothing_else()
    {
        await using var parent = await engine.CreateAsync();
        await using var other = await engine.CreateAsync();
        var key = await engine.Client.CreateForkKeyAsync(parent.Id);
        using var scoped = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = engine.Engine.ApiAddress, ApiKey = key, MaxRetries = 0 });
        // A fork key's children are named under its sandbox: no other name can be taken with it.
        var prefix = $"{parent.Id}-{SandboxWorkloads.UniqueName("scoped")}";

        var result = await new ForkExplorer(scoped).ExploreAsync(parent.Id, [new("a", "echo ok")], new ForkExploreOptions { ChildNamePrefix = prefix });
        Assert.True(result.Branches[0].Passed, result.Branches[0].Error);
        await AssertNothingLeftAsync(prefix, result.SnapshotId);

        var ownSnapshot = await scoped.SnapshotAsync(parent.Id, SnapshotType.Filesystem);
        await AssertForbiddenAsync(() => scoped.CreateAsync(new CreateSandboxRequest { SnapshotId = ownSnapshot.SnapshotId, Name = "agent-squatted" }));
        await scoped.DeleteSnapshotAsync(ownSnapshot.SnapshotId);

        var otherSnapshot = await engine.Client.SnapshotAsync(other.Id, SnapshotType.Filesystem);
        try
        {
            await AssertForbiddenAsync(() => scoped.GetAsync(other.Id));
            await AssertForbiddenAsync(() => scoped.SnapshotAsync(other.Id, SnapshotType.Filesystem));
            await AssertForbiddenAsync(() => scoped.CreateAsync(new CreateSandboxRequest { SnapshotId = otherSnapshot.SnapshotId }));
            await AssertForbiddenAsync(() => scoped.CreateAsync(new CreateSandboxRequest { Image = "host" }));
            await AssertForbiddenAsync(() => scoped.ListAsync());
            await AssertForbiddenAsync(() => scoped.DeleteAsync(other.Id));
            await AssertForbiddenAsync(() => scoped.DeleteAsync(parent.Id));
            await AssertForbiddenAsync(() => scoped.GetSnapshotAsync(otherSnapshot.SnapshotId));
            await AssertForbiddenAsync(() => scoped.CreateForkKeyAsync(parent.Id));
            var otherProxy = scoped.Proxy(await engine.Client.GetAsync(other.Id));
            var refused = await Assert.ThrowsAsync<TensorlakeException>(() => otherProxy.ListProcessesAsync());
            Assert.Equal(401, refused.Status);
        }
        finally
        {
            await engine.Client.DeleteSnapshotAsync(otherSnapshot.SnapshotId);
        }
    }

    [Fact]
    public async Task A_fork_key_reaches_only_the_children_it_made_and_dies_with_its_sandbox()
    {
        await using var parent = await engine.CreateAsync();
        var key = await engine.Client.CreateForkKeyAsync(parent.Id);
        using var scoped = new TensorlakeClient(new TensorlakeClientOptions { ApiUrl = engine.Engine.ApiAddress, ApiKey = key, MaxRetries = 0 });
        var snapshot = await engine.Client.SnapshotAsync(parent.Id, SnapshotType.Filesystem);
        try
        {
            // A child the operator made from the parent's snapshot is not the key's to reach or delete.
            await using (var operatorsChild = await engine.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId }))
            {
                await AssertForbiddenAsync(() => scoped.GetAsync(operatorsChild.Id));
                await AssertForbiddenAsync(() => scoped.DeleteAsync(operatorsChild.Id));
                var operatorsProxy = scoped.Proxy(await engine.Client.GetAsync(operatorsChild.Id));
                var refused = await Assert.ThrowsAsync<TensorlakeException>(() => operatorsProxy.ListProcessesAsync());
                Assert.Equal(401, refused.Status);
            }

            // A child the key made inherits the parent's idle timeout whatever the request says.
            var mine = await scoped.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId, TimeoutSecs = 0, Entrypoint = ["sleep", "1"] });
            Assert.Equal((await engine.Client.GetAsync(parent.Id)).TimeoutSecs, (await scoped.GetAsync(mine.CanonicalId)).TimeoutSecs);

            await engine.Client.DeleteAsync(parent.Id);
            await AssertForbiddenAsync(() => scoped.GetAsync(mine.CanonicalId));
            await AssertForbiddenAsync(() => scoped.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId }));
            await scoped.DeleteAsync(mine.CanonicalId); // its own children it may still clean up
            Assert.Equal(SandboxStatus.Terminated, (await engine.Client.GetAsync(mine.CanonicalId)).Status);
        }
        finally
        {
            await engine.Client.DeleteSnapshotAsync(snapshot.SnapshotId);
        }
    }

    private static async Task AssertForbiddenAsync(Func<Task> call)
    {
        var refused = await Assert.ThrowsAsync<TensorlakeException>(call);
        Assert.Equal(403, refused.Status);
    }

    private async Task AssertNothingLeftAsync(string prefix, string? snapshotId)
    {
        await foreach (var sandbox in engine.Client.ListAllAsync())
        {
            Assert.False(sandbox.Name?.StartsWith(prefix, StringComparison.Ordinal) == true && sandbox.Status != SandboxStatus.Terminated,
                $"child {sandbox.Name} ({sandbox.Status}) was left behind");
        }

        if (snapshotId is not null)
        {
            Assert.DoesNotContain(await engine.Client.ListSnapshotsAsync(), s => s.CanonicalId == snapshotId);
        }
    }
}
