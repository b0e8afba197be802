using System.CommandLine;
using System.Text;
using Hands.Forking;
using Hands.Sandboxes.Models;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands fork-demo</c>: best-of-N on the local stack. A parent sandbox holds a buggy <c>add</c> and a test script
/// (plain sh, no packages); four candidate fixes run in parallel forks of one checkpoint; the fastest passing one wins
/// and its fix is adopted into the parent, whose test then passes.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal static class ForkDemoCommand
{
    public const string BuggyAdd = "#!/bin/sh\n# add A B: prints A + B\necho $(($1 - $2))\n";

    public const string TestScript = """
        #!/bin/sh
        # Runs add.sh on three cases; exits non-zero on the first wrong answer.
        check() { got=$(sh ./add.sh "$1" "$2"); if [ "$got" != "$3" ]; then echo "FAIL add $1 $2 = $got, want $3"; exit 1; fi; }
        check 2 3 5
        check -1 1 0
        check 10 -4 6
        echo "PASS 3/3"

        """;

    /// <summary>The candidates: two wrong fixes, a right one that dawdles, and the same right one at full speed.</summary>
    public static IReadOnlyList<ForkBranch> Candidates { get; } =
    [
        new("swap-operands", "sed -i 's/\\$1 - \\$2/$2 - $1/' add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
        new("multiply", "sed -i 's/\\$1 - \\$2/$1 * $2/' add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
        new("plus-after-retry", "sleep 1.5 && sed -i 's/\\$1 - \\$2/$1 + $2/' add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
        new("plus", "sed -i 's/\\$1 - \\$2/$1 + $2/' add.sh && sh test.sh") { WorkingDirectory = "/workspace" },
    ];

    public static Command Create()
    {
        var filesystem = new Option<bool>("--filesystem") { Description = "Checkpoint files only (default: memory, when CRIU works)" };
        var command = new Command("fork-demo", "Best-of-N on an embedded local stack: fork a buggy project four ways, keep the fastest passing fix") { filesystem };
        command.SetAction(async (parse, ct) =>
        {
            var console = AnsiConsole.Console;
            await using var stack = await LocalStack.StartAsync(null, 0, 0, 0, TimeSpan.FromSeconds(5),
                line => console.MarkupLine($"[grey]· {Markup.Escape(line)}[/]"), null, ct);
            var parent = await stack.Sandboxes.CreateAsync(new CreateSandboxRequest { Name = "fork-demo-parent" }, ct);
            var proxy = stack.Sandboxes.Proxy(await stack.Sandboxes.GetAsync(parent.CanonicalId, ct));
            await proxy.WriteFileAsync("/workspace/add.sh", Encoding.UTF8.GetBytes(BuggyAdd), ct);
            await proxy.WriteFileAsync("/workspace/test.sh", Encoding.UTF8.GetBytes(TestScript), ct);
            var before = await proxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["test.sh"], WorkingDir = "/workspace" }, ct);
            console.MarkupLine($"[grey]· parent {parent.CanonicalId}: sh test.sh → {Markup.Escape(before.Stdout.Trim())}[/]");

            var memory = !parse.GetValue(filesystem) && stack.Engine.CriuAvailable;
            var result = await ForkExploreCommand.Run(stack.Sandboxes, parent.CanonicalId, Candidates, new ForkExploreOptions
            {
                SnapshotType = memory ? SnapshotType.Memory : SnapshotType.Filesystem,
                BranchTimeout = TimeSpan.FromSeconds(60),
                Adopt = true,
                AdoptDirectory = "/workspace",
            }, ct);

            var after = await proxy.RunAsync(new RunProcessRequest { Command = "sh", Args = ["test.sh"], WorkingDir = "/workspace" }, ct);
            var fixedLine = Encoding.UTF8.GetString(await proxy.ReadFileAsync("/workspace/add.sh", ct)).Split('\n').Last(l => l.Length > 0);
            console.MarkupLine($"[grey]· parent now: add.sh: {Markup.Escape(fixedLine)}; sh test.sh → {Markup.Escape(after.Stdout.Trim())}[/]");
            return result.Winner is not null && after.ExitCode == 0 ? 0 : 1;
        });
        return command;
    }
}
