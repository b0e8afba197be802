using System.Diagnostics;
using System.Text;

namespace Hands.Engine.Hosting;

/// <summary>Runs the host tools the engine drives (runc, ip, unshare, nsenter, iptables-restore, cp, debootstrap).</summary>
internal static class CommandRunner
{
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <paramref name="file"/> and throws <see cref="EngineCommandException"/> unless it exits 0.</summary>
    public static async Task<Result> RunCheckedAsync(string file, IEnumerable<string> args, string? stdin = null, CancellationToken cancellationToken = default)
    {
        var result = await RunAsync(file, args, stdin, cancellationToken).ConfigureAwait(false);
        if (result.ExitCode != 0)
        {
            throw new EngineCommandException(file, result.ExitCode, result.Stderr.Length > 0 ? result.Stderr : result.Stdout);
        }

        return result;
    }

    public static async Task<Result> RunAsync(string file, IEnumerable<string> args, string? stdin = null, CancellationToken cancellationToken = default)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = new Process { StartInfo = info };
        try
        {
            process.Start();
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new EngineCommandException(file, -1, $"cannot run '{file}': {ex.Message}; is it installed and on PATH?");
        }

        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin.AsMemory(), cancellationToken).ConfigureAwait(false);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return new Result(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
    }
}

/// <summary>A host tool failed; the message names the tool, its exit code and the tail of what it printed.</summary>
public sealed class EngineCommandException : Exception
{
    public EngineCommandException() { }

    public EngineCommandException(string message) : base(message) { }

    public EngineCommandException(string message, Exception innerException) : base(message, innerException) { }

    public EngineCommandException(string tool, int exitCode, string output)
        : base($"{Path.GetFileName(tool)} failed (exit {exitCode}): {Tail(output)}")
    {
        Tool = tool;
        ExitCode = exitCode;
        Output = output;
    }

    public string Tool { get; } = "";
    public int ExitCode { get; }
    public string Output { get; } = "";

    private static string Tail(string output)
    {
        var text = output.Trim();
        var builder = new StringBuilder(text.Length > 600 ? "…" + text[^600..] : text);
        return builder.Replace('\n', ' ').ToString();
    }
}
