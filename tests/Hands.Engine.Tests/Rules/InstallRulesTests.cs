using System.Diagnostics;

namespace Hands.Engine.Tests.Rules;

/// <summary>
/// Which old releases an install removes (scripts/lib/prune-releases.sh): never the current one or the one before, never
/// one built for later and not yet activated, never one a sandbox's bundle names (a hibernated sandbox runs nothing, yet its CRIU image needs the daemon and worker it was
/// dumped with), and any other that no process maps.
/// </summary>
[Trait("Tier", "Unit")]
public sealed class InstallRulesTests
{
    [Fact]
    public async Task A_release_a_sandbox_was_booted_from_is_kept_and_one_nothing_names_is_removed()
    {
        var root = Directory.CreateTempSubdirectory("hands-prune-test-");
        try
        {
            var prefix = Path.Combine(root.FullName, "opt");
            var state = Path.Combine(root.FullName, "state");
            foreach (var version in new[] { "v0", "v1", "v2", "v3", "v4" })
            {
                Directory.CreateDirectory(Path.Combine(prefix, "releases", version));
                await File.WriteAllTextAsync(Path.Combine(prefix, "releases", version, "hands-sandboxd"), version);
                if (version != "v4")
                {
                    // Each was current once; v4 was only built (install.sh --build-only) for a later --activate.
                    await File.WriteAllTextAsync(Path.Combine(prefix, "releases", version, ".activated"), "");
                }
            }

            // A hibernated sandbox booted from v1: its bundle binds v1's daemon; no process maps anything here.
            var bundle = Directory.CreateDirectory(Path.Combine(state, "engine", "volume", "sandboxes", "sb1", "bundle"));
            await File.WriteAllTextAsync(Path.Combine(bundle.FullName, "config.json"),
                $$"""{"mounts":[{"source":"{{prefix}}/releases/v1/hands-sandboxd","destination":"/opt/hands/bin/hands-sandboxd"}]}""");

            var (exit, stdout, stderr) = await PruneAsync(prefix, state, "releases/v3", "releases/v2");
            Assert.True(exit == 0, stderr);

            Assert.False(Directory.Exists(Path.Combine(prefix, "releases", "v0")), "a release nothing names was kept");
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases", "v1")), "the release a hibernated sandbox needs was removed");
            Assert.Contains("releases/v1: a sandbox", stdout, StringComparison.Ordinal);
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases", "v2")) && Directory.Exists(Path.Combine(prefix, "releases", "v3")));
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases", "v4")), "a release built for later and never activated was removed");
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Every_release_is_kept_while_the_engines_volume_is_not_mounted()
    {
        var root = Directory.CreateTempSubdirectory("hands-prune-test-");
        try
        {
            var prefix = Path.Combine(root.FullName, "opt");
            var state = Path.Combine(root.FullName, "state");
            foreach (var version in new[] { "v0", "v1", "v2" })
            {
                Directory.CreateDirectory(Path.Combine(prefix, "releases", version));
                await File.WriteAllTextAsync(Path.Combine(prefix, "releases", version, ".activated"), "");
            }

            // The volume's image exists, unmounted (a reboot): its bundles cannot be read, so v0 may be a hibernated sandbox's.
            Directory.CreateDirectory(Path.Combine(state, "engine", "volume"));
            await File.WriteAllTextAsync(Path.Combine(state, "engine", "volume.img"), "");
            var (exit, stdout, stderr) = await PruneAsync(prefix, state, "releases/v2", "releases/v1");
            Assert.True(exit == 0, stderr);
            Assert.True(Directory.Exists(Path.Combine(prefix, "releases", "v0")), "a release was pruned while the volume that says who needs it was unmounted");
            Assert.Contains("not mounted", stdout, StringComparison.Ordinal);

            // No volume at all (no engine ever ran here): nothing can need v0, and it goes.
            File.Delete(Path.Combine(state, "engine", "volume.img"));
            (exit, _, stderr) = await PruneAsync(prefix, state, "releases/v2", "releases/v1");
            Assert.True(exit == 0, stderr);
            Assert.False(Directory.Exists(Path.Combine(prefix, "releases", "v0")));
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    private static async Task<(int Exit, string Stdout, string Stderr)> PruneAsync(params string[] args)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(Clone(), "scripts", "lib", "prune-releases.sh"));
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout, await stderr);
    }

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
