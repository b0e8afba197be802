using System.Text.RegularExpressions;
using Hands.Engine.Hosting;

namespace Hands.Engine.Tests.Rules;

/// <summary>
/// What <c>hands doctor</c> and the engine's start name as prerequisites is what the engine runs: every program the
/// engine's source hands to <c>CommandRunner</c> by name is in <see cref="EngineBinaries.RequiredTools"/> (with the
/// Debian package that has it) unless Debian installs it on every system (coreutils, findutils, dash), and every listed
/// tool is run somewhere (no stale entry). The OCI runtime, the init and CRIU are probed on their own.
/// </summary>
[Trait("Tier", "Unit")]
public sealed partial class EnginePrerequisitesRulesTests
{
    /// <summary>Essential packages of Debian: always installed, so never named.</summary>
    private static readonly HashSet<string> Essential = ["/bin/sh", "sh", "cp", "chmod", "chown", "find", "mkdir", "rm", "mv", "nice"];

    [Fact]
    public void Every_program_the_engine_runs_is_a_named_prerequisite_and_every_named_one_is_run()
    {
        var source = string.Join('\n', Directory.EnumerateFiles(Path.Combine(Clone(), "src", "Hands.Engine"), "*.cs", SearchOption.AllDirectories)
            .Where(file => !file.Contains("/obj/", StringComparison.Ordinal) && !file.EndsWith("EngineBinaries.cs", StringComparison.Ordinal))
            .Select(File.ReadAllText));
        var listed = EngineBinaries.RequiredTools.Select(t => t.Tool).ToHashSet(StringComparer.Ordinal);

        var run = RunByName().Matches(source).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        Assert.NotEmpty(run);
        var unnamed = run.Where(tool => !Essential.Contains(tool) && !listed.Contains(tool)).ToList();
        Assert.True(unnamed.Count == 0, "run by the engine but not a named prerequisite: " + string.Join(", ", unnamed));

        // Listed tools run inside shell scripts (nsenter ... iptables-restore, ip netns ...) appear there as words.
        var stale = listed.Where(tool => !Regex.IsMatch(source, $@"(^|[\s""'(\[]){Regex.Escape(tool)}[\s""']", RegexOptions.Multiline)).ToList();
        Assert.True(stale.Count == 0, "named as a prerequisite but run nowhere: " + string.Join(", ", stale));
        Assert.All(EngineBinaries.RequiredTools, t => Assert.False(string.IsNullOrWhiteSpace(t.Package), $"{t.Tool} names no package"));
    }

    [GeneratedRegex(@"CommandRunner\.Run(?:Checked)?Async\(\s*""([^""]+)""")]
    private static partial Regex RunByName();

    private static string Clone()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(dir.FullName, "Hands.slnx")))
        {
            dir = dir.Parent ?? throw new InvalidOperationException("these tests run from a clone");
        }

        return dir.FullName;
    }
}
