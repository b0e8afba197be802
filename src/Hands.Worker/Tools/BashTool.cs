using System.Globalization;
using System.Text.Json;
using Hands.Common;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>bash</c> tool: one persistent shell per session (cwd and variables survive between calls), commands
/// serialised, default timeout 120 s, output tail-kept at 100 KiB. Results match the official TypeScript worker:
/// a non-zero exit is an error whose text is the output (or <c>exit N</c>); a timeout, a shell that exits, or an
/// abort discards the shell, and the next call starts a fresh one.
/// </summary>
public sealed class BashTool(ToolContext context) : IWorkerTool, IDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMilliseconds(120_000);
    private readonly SemaphoreSlim _serial = new(1, 1);
    private BashSession? _session;

    public string Name => "bash";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>bash</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Run a bash command in a persistent shell. State (cwd, env vars) persists across calls.";

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var command = ToolInput.String(input, "bash", "command");
        var restart = ToolInput.Bool(input, "bash", "restart");
        var timeoutMs = ToolInput.Integer(input, "bash", "timeout_ms");
        // Deviation: TypeScript treats timeout_ms 0 as a 0 ms timeout (every call fails at once); the API reference
        // says 0 or absent means the default, and Hands follows the reference.
        var timeout = timeoutMs is > 0 ? TimeSpan.FromMilliseconds(timeoutMs.Value) : DefaultTimeout;
        await _serial.WaitAsync(cancellationToken);
        try
        {
            if (restart)
            {
                _session?.Dispose();
                _session = null;
            }

            if (string.IsNullOrEmpty(command))
            {
                return restart ? ToolOutput.Text("bash session restarted") : throw new ToolError("bash: command is required");
            }

            _session ??= new BashSession(context.Workdir, context.Environment);
            context.HelperProcessStarted?.Invoke(_session.ProcessId);
            var oomKillsBefore = SandboxMemoryCgroup.OomKills();
            try
            {
                var (output, exitCode) = await _session.ExecAsync(command, timeout, cancellationToken);
                if (exitCode != 0)
                {
                    var text = output.Length > 0 ? output : "exit " + exitCode.ToString(CultureInfo.InvariantCulture);
                    // A SIGKILL says nothing of why: the sandbox's cgroup says whether it was for memory.
                    throw new ToolError(SandboxMemoryCgroup.KilledBetween(oomKillsBefore, SandboxMemoryCgroup.OomKills()) ? text + "\n" + OutOfMemory(exitCode) : text);
                }

                return ToolOutput.Text(output);
            }
            catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or BashTerminatedException)
            {
                // The interrupted command may still print its sentinel later: never reuse this shell.
                _session.Dispose();
                _session = null;
                var reason = ex switch
                {
                    TimeoutException => $"bash command timed out after {(long)timeout.TotalMilliseconds}ms",
                    OperationCanceledException => "This operation was aborted",
                    _ when SandboxMemoryCgroup.KilledBetween(oomKillsBefore, SandboxMemoryCgroup.OomKills()) => "bash session terminated\n" + OutOfMemory(null),
                    _ => "bash session terminated",
                };
                throw new ToolError("bash: " + reason);
            }
        }
        finally
        {
            _serial.Release();
        }
    }

    /// <summary>What the agent is told when the OOM killer killed a process of its command.</summary>
    private static string OutOfMemory(int? exitCode)
    {
        var limit = SandboxMemoryCgroup.LimitBytes() is { } bytes ? $" (its limit is {bytes >> 20} MiB)" : "";
        var exit = exitCode is { } code ? $"exit {code.ToString(CultureInfo.InvariantCulture)}: " : "";
        return $"[{exit}out of memory: the sandbox ran out of memory{limit} and the kernel's OOM killer killed a process of this command; the sandbox is still up]";
    }

    public void Dispose()
    {
        _session?.Dispose();
        _session = null;
        _serial.Dispose();
    }
}
