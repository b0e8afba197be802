using System.Threading.Channels;
using Hands.SandboxDaemon.Processes;

namespace Hands.SandboxDaemon.Endpoints;

/// <summary>The process API: <c>/api/v1/processes…</c> (start, run, list, get, kill, signal, stdin, output, follow).</summary>
internal static class ProcessEndpoints
{
    private static readonly TimeSpan KeepAliveEvery = TimeSpan.FromSeconds(15);

    public static void Map(WebApplication app, ProcessTable table)
    {
        app.MapPost("/api/v1/processes", ctx => StartAsync(ctx, table));
        app.MapGet("/api/v1/processes", ctx => DaemonResponses.Json(ctx, 200,
            new ProcessListBody { Processes = [.. table.All.Select(ToInfo)] }, DaemonJsonContext.Default.ProcessListBody));
        app.MapPost("/api/v1/processes/run", ctx => RunAsync(ctx, table));
        app.MapGet("/api/v1/processes/{p}", ctx => WithProcess(ctx, table, p => DaemonResponses.Json(ctx, 200, ToInfo(p), DaemonJsonContext.Default.ProcessInfoBody)));
        app.MapDelete("/api/v1/processes/{p}", ctx => WithProcess(ctx, table, p =>
        {
            p.KillTree();
            return DaemonResponses.NoContent(ctx);
        }));
        app.MapPost("/api/v1/processes/{p}/signal", ctx => WithProcess(ctx, table, p => SignalAsync(ctx, p)));
        app.MapPost("/api/v1/processes/{p}/stdin", ctx => WithProcess(ctx, table, async p =>
        {
            if (!await p.WriteStdinAsync(ctx.Request.Body, ctx.RequestAborted).ConfigureAwait(false))
            {
                await DaemonResponses.Error(ctx, 400, "STDIN_NOT_WRITABLE", $"process {p.Pid} has no open stdin: start it with stdin_mode \"pipe\", and write before closing it or before it exits").ConfigureAwait(false);
                return;
            }

            await DaemonResponses.NoContent(ctx).ConfigureAwait(false);
        }));
        app.MapPost("/api/v1/processes/{p}/stdin/close", ctx => WithProcess(ctx, table, p => p.CloseStdin()
            ? DaemonResponses.NoContent(ctx)
            : DaemonResponses.Error(ctx, 400, "STDIN_NOT_WRITABLE", $"process {p.Pid} has no open stdin to close")));
        foreach (var stream in new[] { "stdout", "stderr", "output" })
        {
            app.MapGet($"/api/v1/processes/{{p}}/{stream}", ctx => WithProcess(ctx, table, p =>
            {
                var lines = p.Captured(stream).Select(l => l.Line).ToList();
                return DaemonResponses.Json(ctx, 200, new OutputBody { Pid = p.Pid, Lines = lines, LineCount = lines.Count }, DaemonJsonContext.Default.OutputBody);
            }));
            app.MapGet($"/api/v1/processes/{{p}}/{stream}/follow", ctx => FollowAsync(ctx, table, stream));
        }
    }

    private static async Task StartAsync(HttpContext ctx, ProcessTable table)
    {
        if (await LaunchAsync(ctx, table, oneShot: false).ConfigureAwait(false) is { } launched)
        {
            await DaemonResponses.Json(ctx, 201, ToInfo(launched.Process), DaemonJsonContext.Default.ProcessInfoBody).ConfigureAwait(false);
        }
    }

    /// <summary>Reads a process request and starts it; on a bad request or a failed spawn, answers the error and returns null.</summary>
    private static async Task<(SandboxProcess Process, StartRequest Request)?> LaunchAsync(HttpContext ctx, ProcessTable table, bool oneShot)
    {
        if (await DaemonResponses.ReadAsync(ctx, DaemonJsonContext.Default.StartRequest).ConfigureAwait(false) is not { } request)
        {
            await DaemonResponses.Error(ctx, 400, "INVALID_REQUEST", $"the body must be a JSON {(oneShot ? "run" : "process")} request: {{\"command\": \"...\", \"args\": [...]}}").ConfigureAwait(false);
            return null;
        }

        if (!oneShot && request.Name is { } name && (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.All(char.IsAsciiDigit)))
        {
            await DaemonResponses.Error(ctx, 400, "INVALID_REQUEST", "a process name must be non-empty, contain no '/', and not be all digits").ConfigureAwait(false);
            return null;
        }

        try
        {
            return (table.Start(request, oneShot), request);
        }
        catch (ProcessLaunchException ex)
        {
            await DaemonResponses.Error(ctx, ex.IsBadRequest ? 400 : 500, ex.IsBadRequest ? "INVALID_REQUEST" : "INTERNAL_ERROR", ex.Message).ConfigureAwait(false);
            return null;
        }
    }

    /// <summary>
    /// Runs to completion, streaming <c>started</c>, each output line and the exit as SSE data frames. The process is
    /// killed when the caller goes away or the <c>timeout</c> passes: a one-shot unit does not outlive its stream.
    /// </summary>
    private static async Task RunAsync(HttpContext ctx, ProcessTable table)
    {
        if (await LaunchAsync(ctx, table, oneShot: true).ConfigureAwait(false) is not { } launched)
        {
            return;
        }

        var (process, request) = launched;
        var (replay, live) = process.Subscribe("output");
        using var timeout = request.Timeout is > 0 ? new CancellationTokenSource(TimeSpan.FromSeconds(request.Timeout.Value)) : new CancellationTokenSource();
        using var timeoutKill = timeout.Token.Register(process.KillTree);
        try
        {
            var sse = new SseWriter(ctx);
            await sse.DataAsync(new RunStartedFrame { Handle = process.Handle, Pid = process.Pid, StartedAt = process.StartedAt.ToUnixTimeMilliseconds() }, DaemonJsonContext.Default.RunStartedFrame).ConfigureAwait(false);
            foreach (var line in replay)
            {
                await sse.DataAsync(new OutputFrame { Line = line.Line, Stream = line.Stream, Timestamp = line.Timestamp }, DaemonJsonContext.Default.OutputFrame).ConfigureAwait(false);
            }

            await PumpAsync(sse, live, includeStream: true, eventName: null, ctx.RequestAborted).ConfigureAwait(false);
            await process.Exited.WaitAsync(ctx.RequestAborted).ConfigureAwait(false);
            await sse.DataAsync(new ExitFrame { ExitCode = process.ExitCode, Signal = process.Signal, OomKilled = process.OomKilled ? true : null }, DaemonJsonContext.Default.ExitFrame).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The caller left; the unit ends with its stream.
        }
        finally
        {
            if (live is not null)
            {
                process.Unsubscribe(live);
            }

            process.KillTree();
        }
    }

    private static async Task FollowAsync(HttpContext ctx, ProcessTable table, string stream)
    {
        var selector = (string)ctx.Request.RouteValues["p"]!;
        var process = table.Find(selector);
        var sse = new SseWriter(ctx);
        if (process is null)
        {
            await sse.DataAsync(new EmptyBody(), DaemonJsonContext.Default.EmptyBody, "eof").ConfigureAwait(false);
            return;
        }

        var (replay, live) = process.Subscribe(stream);
        try
        {
            await sse.StartAsync().ConfigureAwait(false);
            foreach (var line in replay)
            {
                await sse.DataAsync(new OutputFrame { Line = line.Line, Timestamp = 0, Stream = stream == "output" ? line.Stream : null }, DaemonJsonContext.Default.OutputFrame, "output").ConfigureAwait(false);
            }

            await PumpAsync(sse, live, includeStream: stream == "output", eventName: "output", ctx.RequestAborted).ConfigureAwait(false);
            await sse.DataAsync(new EmptyBody(), DaemonJsonContext.Default.EmptyBody, "eof").ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            // The follower left.
        }
        finally
        {
            if (live is not null)
            {
                process.Unsubscribe(live);
            }
        }
    }

    private static async Task PumpAsync(SseWriter sse, ChannelReader<OutputLine>? live, bool includeStream, string? eventName, CancellationToken cancellationToken)
    {
        if (live is null)
        {
            return;
        }

        while (true)
        {
            var wait = live.WaitToReadAsync(cancellationToken).AsTask();
            if (await Task.WhenAny(wait, Task.Delay(KeepAliveEvery, cancellationToken)).ConfigureAwait(false) != wait)
            {
                await sse.KeepAliveAsync().ConfigureAwait(false);
                await wait.ConfigureAwait(false);
            }

            if (!await wait.ConfigureAwait(false))
            {
                return;
            }

            while (live.TryRead(out var line))
            {
                await sse.DataAsync(new OutputFrame { Line = line.Line, Timestamp = line.Timestamp, Stream = includeStream ? line.Stream : null }, DaemonJsonContext.Default.OutputFrame, eventName).ConfigureAwait(false);
            }
        }
    }

    private static async Task SignalAsync(HttpContext ctx, SandboxProcess process)
    {
        var request = await DaemonResponses.ReadAsync(ctx, DaemonJsonContext.Default.SignalRequest).ConfigureAwait(false);
        if (request?.Signal is not int signal || signal is < 1 or > 64)
        {
            await DaemonResponses.Error(ctx, 400, "INVALID_REQUEST", "the body must be {\"signal\": N} with N a signal number from 1 to 64").ConfigureAwait(false);
            return;
        }

        if (!process.SendSignal(signal))
        {
            await DaemonResponses.Error(ctx, 400, "NOT_RUNNING", $"process {process.Pid} is not running").ConfigureAwait(false);
            return;
        }

        await DaemonResponses.Json(ctx, 200, new SuccessBody(), DaemonJsonContext.Default.SuccessBody).ConfigureAwait(false);
    }

    private static Task WithProcess(HttpContext ctx, ProcessTable table, Func<SandboxProcess, Task> action)
    {
        var selector = (string)ctx.Request.RouteValues["p"]!;
        return table.Find(selector) is { } process
            ? action(process)
            : DaemonResponses.Error(ctx, 404, "NOT_FOUND", $"no process '{selector}' in this sandbox (list them with GET /api/v1/processes)");
    }

    private static ProcessInfoBody ToInfo(SandboxProcess p) => new()
    {
        Handle = p.Handle,
        Pid = p.Pid,
        Status = p.IsRunning ? "running" : p.OomKilled ? "oom_killed" : p.Signal is not null ? "signaled" : "exited",
        ExitCode = p.ExitCode,
        Signal = p.Signal,
        OomKilled = p.OomKilled,
        StdinWritable = p.StdinWritable,
        Command = p.Command,
        Args = [.. p.Args],
        StartedAt = p.StartedAt.ToUnixTimeMilliseconds(),
        EndedAt = p.EndedAt?.ToUnixTimeMilliseconds(),
        Name = p.Name,
    };
}
