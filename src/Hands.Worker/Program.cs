using System.CommandLine;
using System.Reflection;
using Hands.Protocol.Client;
using Hands.Worker.Hosting;
using Hands.Worker.Runner;
using Hands.Worker.Telemetry;

var root = new RootCommand("hands-worker: runs a Claude Managed Agents session's tool calls in this sandbox (a drop-in for `ant beta:worker`).");

var sessionId = new Option<string?>("--session-id") { Description = "Session of the claimed item (env: ANTHROPIC_SESSION_ID)" };
var workId = new Option<string?>("--work-id") { Description = "Claimed work item (env: ANTHROPIC_WORK_ID)" };
var secretFile = new Option<string?>("--work-secret-file") { Description = "File holding the work secret; must not be world-readable (env: ANTHROPIC_WORK_SECRET_FILE; or pass ANTHROPIC_WORK_SECRET)" };
var run = new Command("run", "Serve one claimed work item, then exit (the per-sandbox entrypoint)") { sessionId, workId, secretFile };
WorkerCommandLine.AddCommon(run);
run.SetAction(async (parse, ct) =>
{
    var log = new WorkerLog(parse.GetValue(WorkerCommandLine.LogFormat)!);
    OomScore.LeaveVictimsToTools(log);
    ProcessHardening.HideFromSameUser(log);
    var options = WorkerCommandLine.Options(parse, log);
    // The orchestrator's trace context, when it started this worker (a Hands extension: the SDK reads none).
    options.ParentContext = WorkSpan.ParentFromEnvironment();
    using var traces = TraceExport.Start(options.Tracing, log);
    using var metrics = MetricExport.Start(options.Tracing, log);
    var session = WorkerCommandLine.Value(parse, sessionId, "ANTHROPIC_SESSION_ID") ?? throw new UsageException("--session-id (or ANTHROPIC_SESSION_ID) is required");
    var work = WorkerCommandLine.Value(parse, workId, "ANTHROPIC_WORK_ID") ?? throw new UsageException("--work-id (or ANTHROPIC_WORK_ID) is required");
    var secret = Environment.GetEnvironmentVariable("ANTHROPIC_WORK_SECRET");
    if (WorkerCommandLine.Value(parse, secretFile, "ANTHROPIC_WORK_SECRET_FILE") is { } file)
    {
        if (!File.Exists(file))
        {
            throw new UsageException($"--work-secret-file: {file} does not exist");
        }

        if ((File.GetUnixFileMode(file) & (UnixFileMode.OtherRead | UnixFileMode.OtherWrite)) != 0)
        {
            throw new UsageException($"--work-secret-file: {file} is readable by other users; chmod 600 it");
        }

        // /dev/stdin is how the orchestrator hands it over; one that never comes (its sender died) must not hold the worker forever.
        try
        {
            secret = (await File.ReadAllTextAsync(file, ct).WaitAsync(TimeSpan.FromSeconds(60), ct)).Trim();
        }
        catch (TimeoutException)
        {
            throw new UsageException($"--work-secret-file: nothing arrived on {file} within 60 s");
        }
    }

    if (secret is null && options.EnvironmentKey is null)
    {
        throw new UsageException("a credential is required: ANTHROPIC_WORK_SECRET / --work-secret-file, or --environment-key / ANTHROPIC_ENVIRONMENT_KEY");
    }

    var outcome = await new EnvironmentWorker(options).HandleItemAsync(work, session, secret, ct);
    return outcome.Failed ? 1 : 0;
});

var onWork = new Option<string?>("--on-work") { Description = "Script to run per claimed item (env vars + work JSON on stdin); empty or 'in-process' runs it here" };
var workerId = WorkerCommandLine.WorkerId;
var poll = new Command("poll", "Claim work from the environment's queue and serve each session (in process, or with --on-work)") { onWork, workerId };
WorkerCommandLine.AddCommon(poll);
poll.SetAction(async (parse, ct) =>
{
    var log = new WorkerLog(parse.GetValue(WorkerCommandLine.LogFormat)!);
    OomScore.LeaveVictimsToTools(log);
    ProcessHardening.HideFromSameUser(log);
    var options = WorkerCommandLine.Options(parse, log);
    if (WorkerCommandLine.Value(parse, workerId, "ANTHROPIC_WORKER_ID") is { } id)
    {
        options.WorkerId = id;
    }

    using var traces = TraceExport.Start(options.Tracing, log);
    using var metrics = MetricExport.Start(options.Tracing, log);
    var script = parse.GetValue(onWork);
    var worker = new EnvironmentWorker(options);
    try
    {
        if (string.IsNullOrEmpty(script) || script == "in-process")
        {
            await worker.RunAsync(ct);
        }
        else
        {
            var runner = new OnWorkScript(script, options.EnvironmentId, options.EnvironmentKey, log, options.Tracing.Propagation);
            await worker.RunAsync(ct, runner.RunAsync);
        }
    }
    catch (OperationCanceledException) when (ct.IsCancellationRequested)
    {
        log.Info("poller stopped");
    }

    return 0;
});

root.Subcommands.Add(run);
root.Subcommands.Add(poll);
root.Subcommands.Add(Hands.Worker.Forking.ForkCommand.Create());

// The same binary, mounted as hands-fork, is the fork helper.
if (Path.GetFileName(Environment.ProcessPath) == "hands-fork" || Path.GetFileName(Environment.GetCommandLineArgs()[0]) == "hands-fork")
{
    args = ["fork", .. args];
}

try
{
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (UsageException ex)
{
    Console.Error.WriteLine($"hands-worker: {ex.Message}");
    return 2;
}
catch (ManagedAgentsException ex)
{
    Console.Error.WriteLine($"hands-worker: {ex.Message}");
    return 1;
}
catch (InvalidOperationException ex)
{
    Console.Error.WriteLine($"hands-worker: {ex.Message}");
    return 2;
}
