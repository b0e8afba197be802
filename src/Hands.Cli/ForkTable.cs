using System.Globalization;
using Hands.Forking;
using Spectre.Console;

namespace Hands.Cli;

/// <summary>
/// Runs a fork-and-explore with a live table of branches (state, exit, elapsed, child) on a terminal, or one line per
/// state change when the output is piped; then prints the winner.
/// </summary>
internal static class ForkTable
{
    public static async Task<ForkExploreResult> RunAsync(ForkExplorer explorer, string parent, IReadOnlyList<ForkBranch> branches, ForkExploreOptions options, CancellationToken ct)
    {
        var console = AnsiConsole.Console;
        var states = branches.Select((b, i) => new BranchResult { Index = i, Name = b.Name, State = BranchState.Queued }).ToArray();
        var changed = 0;
        options.OnProgress = line => console.MarkupLine($"[grey]· {Markup.Escape(line)}[/]");
        ForkExploreResult result;
        if (Console.IsOutputRedirected)
        {
            options.OnBranchChanged = b =>
            {
                lock (states)
                {
                    if (states[b.Index].State == b.State && b.State != BranchState.Queued)
                    {
                        return;
                    }

                    states[b.Index] = b;
                    Console.WriteLine($"{b.Name}\t{b.State.Label()}\t{b.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-"}\t{Elapsed(b)}\t{Detail(b)}");
                }
            };
            result = await explorer.ExploreAsync(parent, branches, options, ct);
        }
        else
        {
            options.OnBranchChanged = b =>
            {
                lock (states)
                {
                    states[b.Index] = b;
                }

                Interlocked.Exchange(ref changed, 1);
            };
            var table = Render(states);
            result = null!;
            await console.Live(table).AutoClear(false).StartAsync(async live =>
            {
                var work = explorer.ExploreAsync(parent, branches, options, ct);
                while (!work.IsCompleted)
                {
                    await Task.WhenAny(work, Task.Delay(100, CancellationToken.None));
                    if (Interlocked.Exchange(ref changed, 0) == 1)
                    {
                        lock (states)
                        {
                            live.UpdateTarget(Render(states));
                        }
                    }
                }

                result = await work;
                live.UpdateTarget(Render([.. result.Branches]));
            });
        }

        PrintOutcome(console, result);
        return result;
    }

    private static Table Render(IReadOnlyList<BranchResult> branches)
    {
        var table = new Table().Border(TableBorder.Rounded).AddColumns("branch", "state", "exit", "elapsed", "child", "detail");
        foreach (var b in branches)
        {
            var color = b.State switch
            {
                BranchState.Passed => "green",
                BranchState.Failed or BranchState.TimedOut or BranchState.Error => "red",
                BranchState.Cancelled => "grey",
                _ => "yellow",
            };
            table.AddRow(
                Markup.Escape(b.Name),
                $"[{color}]{b.State.Label()}[/]",
                b.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-",
                Elapsed(b),
                Markup.Escape(b.SandboxId ?? "-"),
                Markup.Escape(Detail(b)));
        }

        return table;
    }

    private static void PrintOutcome(IAnsiConsole console, ForkExploreResult result)
    {
        if (result.Winner is { } winner)
        {
            console.MarkupLine($"[green]winner: {Markup.Escape(winner.Name)}[/] (exit {winner.ExitCode}, {Elapsed(winner)}, score {winner.Score.ToString(CultureInfo.InvariantCulture)})");
        }
        else
        {
            console.MarkupLine("[red]no branch passed[/]");
        }

        if (result.Adopted is { } adopted)
        {
            console.MarkupLine($"[grey]· adopted into {Markup.Escape(result.ParentId)}:{Markup.Escape(adopted.Directory)}: {adopted.Copied.Count} file(s) copied{(adopted.Copied.Count > 0 ? " (" + Markup.Escape(string.Join(", ", adopted.Copied.Take(10))) + ")" : "")}, {adopted.Deleted.Count} removed[/]");
        }

        if (result.SnapshotKept)
        {
            console.MarkupLine($"[grey]· kept: snapshot {Markup.Escape(result.SnapshotId)} and children {Markup.Escape(string.Join(", ", result.Branches.Where(b => b.Kept).Select(b => b.SandboxId)))}[/]");
        }
    }

    private static string Elapsed(BranchResult b) => b.Elapsed is { } e ? $"{e.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture)} s" : "-";

    private static string Detail(BranchResult b)
    {
        var lastLine = b.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        // A plain non-zero exit says less than the command's own last words ("FAIL add 2 3 = 6").
        var text = (b.Error is null || (b.Error.StartsWith("exit code", StringComparison.Ordinal) && lastLine is not null) ? lastLine : b.Error) ?? "";
        return text.Length > 60 ? text[..57] + "..." : text;
    }
}
