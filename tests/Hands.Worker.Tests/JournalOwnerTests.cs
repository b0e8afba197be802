using System.Diagnostics;
using System.Globalization;
using Hands.Worker.Hosting;
using Hands.Worker.Journal;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// One worker at a time per session journal: a successor whose predecessor still runs waits for it to let go, never
/// serves beside it, and a mark left by a worker that is gone does not hold anyone up.
/// </summary>
[Trait("Tier", "Unit")]
public sealed class JournalOwnerTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hands-journal-owner-");
    private readonly FakeTimeProvider _time = new();

    private string Journal => Path.Combine(_dir.FullName, "sesn_1.journal");

    [Fact]
    public async Task A_second_run_waits_until_the_first_lets_go()
    {
        var first = await JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        var second = JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(5));
        Assert.False(second.IsCompleted);

        first.Dispose();
        using var acquired = await AdvanceUntilDoneAsync(second);
        Assert.True(File.Exists(JournalOwner.PathFor(Journal)));
    }

    [Fact]
    public async Task A_predecessor_that_never_lets_go_means_the_item_is_not_served()
    {
        using var first = await JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        var second = JournalOwner.AcquireAsync(Journal, TimeSpan.FromSeconds(3), WorkerLog.Silent, _time, CancellationToken.None);
        var busy = await Assert.ThrowsAsync<JournalBusyException>(() => AdvanceUntilDoneAsync(second));
        Assert.Contains($"pid {Environment.ProcessId}", busy.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_live_worker_in_another_process_is_waited_for_and_its_exit_frees_the_journal()
    {
        // Stands in for the other worker: a live process, marked with its own command name.
        using var other = Process.Start(new ProcessStartInfo("sleep", "60") { UseShellExecute = false })!;
        try
        {
            var comm = File.ReadAllText($"/proc/{other.Id}/comm").Trim();
            File.WriteAllText(JournalOwner.PathFor(Journal), $"{other.Id.ToString(CultureInfo.InvariantCulture)} {comm}\n");
            var successor = JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
            _time.Advance(TimeSpan.FromSeconds(5));
            Assert.False(successor.IsCompleted);

            other.Kill();
            await other.WaitForExitAsync();
            using var acquired = await AdvanceUntilDoneAsync(successor);
            Assert.StartsWith(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + " ", File.ReadAllText(JournalOwner.PathFor(Journal)), StringComparison.Ordinal);
        }
        finally
        {
            if (!other.HasExited)
            {
                other.Kill();
            }
        }
    }

    [Theory]
    [InlineData("a pid that is gone", "4194303 hands-worker\n")]
    [InlineData("a pid now running another program", "1 hands-worker-not-this\n")]
    [InlineData("a torn mark", "12")]
    public async Task A_stale_mark_is_replaced_at_once(string what, string mark)
    {
        File.WriteAllText(JournalOwner.PathFor(Journal), mark);
        var acquiring = JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        Assert.True(acquiring.IsCompleted, $"held up by {what}");
        using var acquired = await acquiring;
    }

    [Fact]
    public async Task A_mark_with_this_processes_pid_that_no_run_here_holds_is_stale()
    {
        // A fork's new worker may get the pid its parent's worker had; the copied mark must not hold it up.
        var comm = File.ReadAllText("/proc/self/comm").Trim();
        File.WriteAllText(JournalOwner.PathFor(Journal), $"{Environment.ProcessId.ToString(CultureInfo.InvariantCulture)} {comm}\n");
        var acquiring = JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        Assert.True(acquiring.IsCompleted);
        (await acquiring).Dispose();
        Assert.False(File.Exists(JournalOwner.PathFor(Journal)));
    }

    [Fact]
    public async Task Letting_go_leaves_a_mark_that_is_not_its_own()
    {
        var owner = await JournalOwner.AcquireAsync(Journal, Wait, WorkerLog.Silent, _time, CancellationToken.None);
        File.WriteAllText(JournalOwner.PathFor(Journal), "1 someone-else\n");
        owner.Dispose();
        Assert.Equal("1 someone-else\n", File.ReadAllText(JournalOwner.PathFor(Journal)));
    }

    /// <summary>
    /// Moves the fake clock on in the waiter's steps until it is done; each step gives the waiter's continuation (on the
    /// thread pool) a moment to set its next timer, bounded in count.
    /// </summary>
    private async Task<T> AdvanceUntilDoneAsync<T>(Task<T> waiter)
    {
        for (var step = 0; step < 2000 && !waiter.IsCompleted; step++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(200));
            await Task.WhenAny(waiter, Task.Delay(5));
        }

        return await waiter;
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
