using System.Reflection;
using System.Runtime.InteropServices;
using Hands.Common;
using Hands.Orchestrator;
using Hands.Sandboxes.Client;
using Microsoft.Extensions.Logging;

// hands-receiver: `hands webhook` as one self-contained native binary. Every setting comes from the environment
// (docs/orchestrator.md lists them); the only flag is where to listen, since the signing key must never ride argv.
const string Usage = """
    usage: hands-receiver [--urls http://HOST:PORT]
    Serves a self_hosted environment's work queue on signed webhook deliveries (the webhook orchestrator, as
    'hands webhook'), one sandbox per session. Settings come from the environment: ANTHROPIC_ENVIRONMENT_ID,
    ANTHROPIC_ENVIRONMENT_KEY, ANTHROPIC_WEBHOOK_SIGNING_KEY, ANTHROPIC_BASE_URL, TENSORLAKE_API_URL, TENSORLAKE_API_KEY
    and the orchestrator's others (docs/orchestrator.md). GET /healthz reports status.
    """;

var urls = "http://127.0.0.1:5051";
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--urls" when i + 1 < args.Length:
            urls = args[++i];
            break;
        case "-h" or "--help":
            Console.WriteLine(Usage);
            return 0;
        case "--version":
            Console.WriteLine(typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown");
            return 0;
        default:
            await Console.Error.WriteLineAsync($"hands-receiver: unknown argument '{args[i]}'\n{Usage}");
            return 2;
    }
}

using var stopping = new CancellationTokenSource();
using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var onInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
try
{
    CredentialHolder.BecomeNonDumpable();
    using var logging = LoggerFactory.Create(WebhookMode.ConfigureLogging);
    var logger = logging.CreateLogger("hands.webhook");
    var options = OrchestratorEnvironment.Build(logger, "http://127.0.0.1:8787");
    var signingKey = OrchestratorEnvironment.Require("ANTHROPIC_WEBHOOK_SIGNING_KEY", "the endpoint's signing secret (whsec_...), shown once when the endpoint was registered");
    var url = Uri.TryCreate(urls, UriKind.Absolute, out var parsed) ? parsed : throw new OrchestratorException($"--urls: '{urls}' is not an http:// URL.");
    using var sandboxes = new TensorlakeClient(TensorlakeClientOptions.FromEnvironment());
    await WebhookMode.RunAsync(options, signingKey, url, sandboxes, logger, stopping.Token);
    return 0;
}
catch (HandsException ex)
{
    await Console.Error.WriteLineAsync($"hands-receiver: {ex.Message}");
    return 1;
}

void Stop(PosixSignalContext context)
{
    // Handled here: the receiver stops taking deliveries and finishes the drain under way before it exits.
    context.Cancel = true;
    stopping.Cancel();
}
