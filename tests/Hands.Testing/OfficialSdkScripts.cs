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

    public static async Task<(int Exit, string Stdout, string Stderr)> RunNodeAsync(string script, Dictionary<string, string> env, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("node", script)
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
