using Hands.Hosting;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator;

/// <summary>
/// The webhook orchestrator as a whole process runs it, shared by <c>hands webhook</c> and the native
/// <c>hands-receiver</c> (what <c>hands webhook-sandbox</c> runs in its sandbox): the one-per-environment lock, claim
/// recovery, the receiver, the janitor; <see cref="RunAsync"/> runs until its token fires, then finishes the drain
/// under way.
/// </summary>
public static class WebhookMode
{
    /// <summary>The console logging every orchestrator process uses: Hands' console format, Information and up, framework noise at Warning.</summary>
    public static void ConfigureLogging(ILoggingBuilder builder) =>
        builder.AddHandsConsole().SetMinimumLevel(LogLevel.Information)
            .AddFilter("Microsoft", LogLevel.Warning).AddFilter("System.Net.Http", LogLevel.Warning);

    /// <summary>
    /// Serves the work queue of <paramref name="options"/>' environment on deliveries to <paramref name="url"/> (an
    /// <c>http://</c> URL), signed with <paramref name="signingKey"/>, creating session sandboxes through
    /// <paramref name="sandboxes"/>.
    /// </summary>
    public static async Task RunAsync(OrchestratorOptions options, string signingKey, Uri url, TensorlakeClient sandboxes, ILogger logger,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(logger);
        if (url.Scheme != "http")
        {
            throw new OrchestratorException($"--urls: '{url}' is not an http:// URL.");
        }

        using var held = OrchestratorLock.Acquire(options.EnvironmentId, "webhook");
        using var environment = OrchestratorEnvironment.EnvironmentClient(options.BaseUrl, options.EnvironmentKey);
        // As in poll: claims are recorded beside the lock, and a killed predecessor's are settled before any drain.
        var orchestrator = new WorkQueueOrchestrator(environment, sandboxes, options, held);
        await orchestrator.RecoverClaimsAsync(cancellationToken).ConfigureAwait(false);
        await using var receiver = await WebhookReceiver.StartAsync(orchestrator, new WebhookReceiverOptions
        {
            Url = url,
            SigningKey = signingKey,
            FallbackDrainInterval = OrchestratorEnvironment.WebhookDrainInterval(),
        }, ConfigureLogging, cancellationToken).ConfigureAwait(false);
        await using var janitor = new SandboxJanitor(sandboxes, logger).Start(OrchestratorEnvironment.JanitorInterval());
        logger.LogInformation("webhook receiver for environment {Environment} on {Address} (health: {Address}healthz)", options.EnvironmentId, receiver.Address, receiver.Address);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            logger.LogInformation("stopping: finishing the drain under way");
        }
    }
}
