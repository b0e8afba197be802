using Hands.Engine.Sandboxes;
using Hands.Engine.Storage;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Rules;

/// <summary>The sandbox state machine on its own: the legal moves, what each move writes, and what it refuses.</summary>
[Trait("Tier", "Unit")]
public sealed class SandboxLifecycleRulesTests
{
    private const long Now = 1_700_000_000_000;

    /// <summary>By name: xunit's theory parameters must be public types, and the state type is the engine's own.</summary>
    public static TheoryData<string, string> LegalMoves => new()
    {
        { "Pending", "Running" },
        { "Pending", "Terminated" },
        { "Running", "Frozen" },
        { "Running", "Suspending" },
        { "Running", "Snapshotting" },
        { "Running", "Terminated" },
        { "Snapshotting", "Running" },
        { "Snapshotting", "Terminated" },
        { "Frozen", "Running" },
        { "Frozen", "Suspending" },
        { "Frozen", "Terminated" },
        { "Suspending", "Hibernated" },
        { "Suspending", "Running" },
        { "Suspending", "Frozen" },
        { "Suspending", "Terminated" },
        { "Hibernated", "Running" },
        { "Hibernated", "Terminated" },
    };

    [Fact]
    public void Exactly_the_listed_moves_are_legal()
    {
        var legal = LegalMoves.Select(row => (State((string)row[0]), State((string)row[1]))).ToHashSet();
        foreach (var from in Enum.GetValues<SandboxState>())
        {
            foreach (var to in Enum.GetValues<SandboxState>())
            {
                Assert.True(legal.Contains((from, to)) == SandboxLifecycle.CanMove(from, to), $"{from} -> {to}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(LegalMoves))]
    public void A_legal_move_writes_a_record_that_reads_back_as_its_target(string from, string to)
    {
        var record = RecordIn(State(from));
        SandboxLifecycle.MoveTo(record, State(to), Now, "Test");
        Assert.Equal(State(to), SandboxLifecycle.StateOf(record));
    }

    [Theory]
    [InlineData("Terminated", "Running")]
    [InlineData("Hibernated", "Frozen")]
    [InlineData("Frozen", "Snapshotting")]
    [InlineData("Pending", "Frozen")]
    [InlineData("Snapshotting", "Suspending")]
    public void An_illegal_move_is_refused_and_changes_nothing(string from, string to)
    {
        var record = RecordIn(State(from));
        var before = (record.Status, record.SuspendTier, record.SuspendedAt, record.TerminatedAt);
        var refused = Assert.Throws<InvalidSandboxTransitionException>(() => SandboxLifecycle.MoveTo(record, State(to), Now));
        Assert.Equal(500, refused.Status);
        Assert.Equal("sbx1", refused.SandboxId);
        Assert.Equal(before, (record.Status, record.SuspendTier, record.SuspendedAt, record.TerminatedAt));
    }

    [Theory]
    [InlineData("Running")]
    [InlineData("Frozen")]
    public void A_dump_that_fails_goes_back_to_where_it_started(string start)
    {
        var record = RecordIn(State(start));
        var frozenSince = record.SuspendedAt;
        SandboxLifecycle.MoveTo(record, SandboxState.Suspending, Now + 5);
        Assert.Equal(SandboxStatus.Suspending, record.Status);

        SandboxLifecycle.MoveTo(record, SandboxLifecycle.SuspendingFrom(record), Now + 10);
        Assert.Equal(State(start), SandboxLifecycle.StateOf(record));
        Assert.Equal(frozenSince, record.SuspendedAt);
    }

    [Fact]
    public void Hibernating_a_frozen_sandbox_keeps_the_time_it_froze()
    {
        var record = RecordIn(SandboxState.Running);
        SandboxLifecycle.MoveTo(record, SandboxState.Frozen, Now);
        SandboxLifecycle.MoveTo(record, SandboxState.Suspending, Now + 1000);
        SandboxLifecycle.MoveTo(record, SandboxState.Hibernated, Now + 2000);
        Assert.Equal((SandboxStatus.Suspended, SuspendTier.Hibernated, Now), (record.Status, record.SuspendTier, record.SuspendedAt));
    }

    [Fact]
    public void Waking_clears_the_tier_and_the_suspend_time()
    {
        var record = RecordIn(SandboxState.Hibernated);
        SandboxLifecycle.MoveTo(record, SandboxState.Running, Now);
        Assert.Equal((SandboxStatus.Running, (string?)null, (long?)null), (record.Status, record.SuspendTier, record.SuspendedAt));
    }

    [Fact]
    public void Terminating_records_when_and_why()
    {
        var record = RecordIn(SandboxState.Frozen);
        SandboxLifecycle.MoveTo(record, SandboxState.Terminated, Now, "Timeout");
        Assert.Equal((SandboxStatus.Terminated, (string?)null, Now, "Timeout"),
            (record.Status, record.SuspendTier, record.TerminatedAt, record.TerminationReason));
        Assert.False(record.IsAlive);
    }

    [Fact]
    public void A_stored_status_the_engine_does_not_know_is_refused()
    {
        var record = new SandboxRecord { Id = "sbx1", Status = "exploded" };
        Assert.Throws<InvalidSandboxTransitionException>(() => SandboxLifecycle.StateOf(record));
    }

    private static SandboxState State(string name) => Enum.Parse<SandboxState>(name);

    /// <summary>A record in <paramref name="state"/>, reached through legal moves only.</summary>
    private static SandboxRecord RecordIn(SandboxState state)
    {
        var record = new SandboxRecord { Id = "sbx1", Status = SandboxStatus.Pending };
        SandboxState[] path = state switch
        {
            SandboxState.Pending => [],
            SandboxState.Running => [SandboxState.Running],
            SandboxState.Snapshotting => [SandboxState.Running, SandboxState.Snapshotting],
            SandboxState.Frozen => [SandboxState.Running, SandboxState.Frozen],
            SandboxState.Suspending => [SandboxState.Running, SandboxState.Suspending],
            SandboxState.Hibernated => [SandboxState.Running, SandboxState.Suspending, SandboxState.Hibernated],
            _ => [SandboxState.Terminated],
        };
        foreach (var step in path)
        {
            SandboxLifecycle.MoveTo(record, step, Now - 60_000);
        }

        return record;
    }
}
