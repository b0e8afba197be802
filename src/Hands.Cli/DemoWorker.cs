using Hands.Worker.Hosting;
using Hands.Worker.Runner;

namespace Hands.Cli;

/// <summary>
/// The environment worker run in process for the demo (the "always-on, in process" deployment pattern). Until the
/// sandbox engine and orchestrator exist, this is how the demo's tool calls execute: on this host, confined to a
/// temporary workdir, with the same code that runs inside sandboxes.
/// </summary>
internal static class DemoWorker
{
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public static Task StartAsync(Uri baseUrl, string environmentId, string environmentKey, string workdir, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(workdir);
        var worker = new EnvironmentWorker(new EnvironmentWorkerOptions
        {
            BaseUrl = baseUrl,
            EnvironmentId = environmentId,
            EnvironmentKey = environmentKey,
            Workdir = workdir,
            MaxIdle = TimeSpan.FromSeconds(1),
            Log = WorkerLog.Silent,
        });
        return Task.Run(async () =>
        {
            try
            {
                await worker.RunAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }
        }, CancellationToken.None);
    }
}
