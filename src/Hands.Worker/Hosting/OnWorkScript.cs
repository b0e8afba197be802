using System.Diagnostics;
using System.Text.Json;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Worker.Hosting;

/// <summary>
/// <c>--on-work SCRIPT</c>, as <c>ant beta:worker poll</c> runs it: synchronously per claimed session item, with
/// <c>ANTHROPIC_WORK_ID</c>, <c>ANTHROPIC_ENVIRONMENT_ID</c>, <c>ANTHROPIC_SESSION_ID</c> and
/// <c>ANTHROPIC_ENVIRONMENT_KEY</c> added to its environment and the work item JSON (secret included) on stdin; its
/// output goes to the worker's stderr. On cancellation it gets SIGTERM and 30 s before SIGKILL. A script that cannot
/// be started at all stops the poller. With trace propagation on, the script also gets the work span's context as
/// <c>TRACEPARENT</c>/<c>TRACESTATE</c> (a Hands extension), so a <c>hands-worker run</c> it starts joins the item's trace.
/// </summary>
internal sealed class OnWorkScript(string script, string environmentId, string? environmentKey, WorkerLog log, bool propagate = true)
{
    public async Task RunAsync(WorkItem item, CancellationToken cancellationToken)
    {
        var psi = new ProcessStartInfo(script)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["ANTHROPIC_WORK_ID"] = item.Id;
        psi.Environment["ANTHROPIC_ENVIRONMENT_ID"] = environmentId;
        psi.Environment["ANTHROPIC_SESSION_ID"] = item.Data.Id;
        if (environmentKey is not null)
        {
            psi.Environment["ANTHROPIC_ENVIRONMENT_KEY"] = environmentKey;
        }

        // The item's context, never one this process inherited: each item is its own trace.
        psi.Environment.Remove("TRACEPARENT");
        psi.Environment.Remove("TRACESTATE");
        if (propagate && Activity.Current is { IdFormat: ActivityIdFormat.W3C } span)
        {
            psi.Environment["TRACEPARENT"] = span.Id;
            if (span.TraceStateString is { Length: > 0 } state)
            {
                psi.Environment["TRACESTATE"] = state;
            }
        }

        Process process;
        try
        {
            process = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new UsageException($"--on-work {script}: cannot run it: {ex.Message}");
        }

        using (process)
        {
            var forward = Task.WhenAll(Forward(process.StandardOutput), Forward(process.StandardError));
            await process.StandardInput.WriteAsync(JsonSerializer.Serialize(item, ProtocolJsonContext.Default.WorkItem));
            process.StandardInput.Close();
            try
            {
                await process.WaitForExitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                Signal(process.Id, 15);
                using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    await process.WaitForExitAsync(grace.Token);
                }
                catch (OperationCanceledException)
                {
                    process.Kill(entireProcessTree: true);
                }

                throw;
            }

            await forward;
            if (process.ExitCode != 0)
            {
                log.Warn("on-work script exited non-zero", ("work_id", item.Id), ("exit_code", process.ExitCode));
            }
        }
    }

    private static async Task Forward(StreamReader reader)
    {
        string? line;
        while ((line = await reader.ReadLineAsync()) is not null)
        {
            await Console.Error.WriteLineAsync(line);
        }
    }

    private static void Signal(int pid, int signal)
    {
        try
        {
            using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture) }, UseShellExecute = false });
            kill?.WaitForExit(5000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
    }
}
