using System.Diagnostics;
using Hands.Worker.Hosting;
using Hands.Worker.Journal;
using Hands.Worker.Runner;
using Hands.Worker.Tools;

namespace Hands.Worker.Tests;

/// <summary>The tool-call journal on its own: what a successor finds, what it forgets, and the processes it stops.</summary>
[Trait("Tier", "Unit")]
public sealed class ToolCallJournalTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hands-journal-test-");
    private readonly WorkerLog _log = new();

    private string JournalPath => ToolCallJournal.PathFor(_dir.FullName, "sesn_01/..x");

    [Fact]
    public void The_file_name_is_the_session_id_made_safe() =>
        Assert.Equal(Path.Combine(_dir.FullName, "sesn_01___x.journal"), JournalPath);

    [Fact]
    public void A_successor_finds_a_finished_calls_result_and_a_started_calls_processes()
    {
        var first = ToolCallJournal.Open(JournalPath, _log);
        first.Started("tu_done", "bash");
        first.Finished("tu_done", ToolOutput.Text("the result"));
        first.Started("tu_cut", "bash");
        first.ProcessStarted(Environment.ProcessId);

        var successor = ToolCallJournal.Open(JournalPath, _log);
        var done = successor.Previous("tu_done");
        Assert.Equal("the result", done!.Output!.Content.Single().Text);
        var cut = successor.Previous("tu_cut");
        Assert.Null(cut!.Output);
        Assert.Equal("bash", cut.Tool);
        Assert.Equal(Environment.ProcessId, cut.Processes.Single().Pid);
        Assert.Null(successor.Previous("tu_other"));
    }

    [Fact]
    public void Posted_calls_are_forgotten_and_the_file_goes_when_nothing_is_outstanding()
    {
        var journal = ToolCallJournal.Open(JournalPath, _log);
        journal.Started("tu_1", "write");
        journal.Finished("tu_1", ToolOutput.Text("ok"));
        Assert.True(File.Exists(JournalPath));
        journal.Posted("tu_1");
        Assert.False(File.Exists(JournalPath));

        journal.Started("tu_2", "bash");
        journal.Finished("tu_2", ToolOutput.Text("ok"));
        File.AppendAllText(JournalPath, "{\"call\":\"tu_2\",\"state\":\"posted\",\"at\":1}\n");
        var successor = ToolCallJournal.Open(JournalPath, _log);
        Assert.Null(successor.Previous("tu_2"));
        Assert.False(File.Exists(JournalPath));
    }

    [Fact]
    public void A_line_cut_short_by_a_crash_is_skipped()
    {
        var journal = ToolCallJournal.Open(JournalPath, _log);
        journal.Started("tu_1", "bash");
        File.AppendAllText(JournalPath, "{\"call\":\"tu_1\",\"state\":\"fin");
        var successor = ToolCallJournal.Open(JournalPath, _log);
        Assert.Null(successor.Previous("tu_1")!.Output);
    }

    [Fact]
    public void Only_reads_are_run_again()
    {
        Assert.Equal(["glob", "grep", "read"], SessionToolRunner.SideEffectFree.Order());
        var interrupted = SessionToolRunner.Interrupted("bash", 2);
        Assert.True(interrupted.IsError);
        Assert.Contains("the 2 process(es) it left running were stopped", interrupted.Content.Single().Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_recorded_process_tree_is_stopped_and_a_reused_pid_is_left_alone()
    {
        using var shell = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "sleep 60 & sleep 60; wait"]) { RedirectStandardOutput = true })!;
        var start = OrphanedProcesses.StartTimeOf(shell.Id)!.Value;
        Assert.Equal(0, OrphanedProcesses.KillTree(shell.Id, start + 1, since: 0)); // not the process that was recorded
        Assert.False(shell.HasExited);
        await WaitForChildrenAsync(shell.Id, 2);

        Assert.Equal(3, OrphanedProcesses.KillTree(shell.Id, start, since: 0));
        await shell.WaitForExitAsync();
        Assert.Null(OrphanedProcesses.StartTimeOf(shell.Id));
    }

    [Fact]
    public async Task What_an_earlier_call_left_running_in_the_same_shell_is_spared()
    {
        using var shell = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "sleep 60 & read line; sleep 60 & wait"]) { RedirectStandardInput = true })!;
        var earlier = (await WaitForChildrenAsync(shell.Id, 1)).Single(); // a background job of an earlier call
        var since = OrphanedProcesses.NowTicks() + 1;
        while (OrphanedProcesses.NowTicks() < since)
        {
            await Task.Delay(5); // the next call begins on a later tick than the earlier job's start
        }

        await shell.StandardInput.WriteLineAsync("go"); // the interrupted call starts its own job
        await WaitForChildrenAsync(shell.Id, 2);
        try
        {
            Assert.Equal(2, OrphanedProcesses.KillTree(shell.Id, OrphanedProcesses.StartTimeOf(shell.Id)!.Value, since));
            await shell.WaitForExitAsync();
            Assert.NotNull(OrphanedProcesses.StartTimeOf(earlier));
        }
        finally
        {
            Process.GetProcessById(earlier).Kill();
        }
    }

    [Fact]
    public void This_process_and_its_ancestors_are_never_stopped() =>
        Assert.Equal(0, OrphanedProcesses.KillTree(Environment.ProcessId, OrphanedProcesses.StartTimeOf(Environment.ProcessId)!.Value, since: 0));

    private static async Task<List<int>> WaitForChildrenAsync(int pid, int count)
    {
        for (var i = 0; ; i++)
        {
            var children = Children(pid);
            if (children.Count >= count)
            {
                return children;
            }

            Assert.True(i < 400, $"process {pid} did not start {count} children");
            await Task.Delay(10);
        }
    }

    private static List<int> Children(int pid) => [.. Directory.EnumerateDirectories("/proc")
        .Where(d => int.TryParse(Path.GetFileName(d), out _) && TryRead(Path.Combine(d, "stat")) is { } stat
            && stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1] == pid.ToString(System.Globalization.CultureInfo.InvariantCulture))
        .Select(d => int.Parse(Path.GetFileName(d), System.Globalization.CultureInfo.InvariantCulture))];

    private static string? TryRead(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public void Dispose() => _dir.Delete(recursive: true);
}
