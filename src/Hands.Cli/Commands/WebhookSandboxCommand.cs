using System.CommandLine;
using Hands.Cli.Configuration;
using Hands.Orchestrator;
using Hands.Protocol.Models;
using Hands.Sandboxes.Models;
using Microsoft.Extensions.Logging.Abstractions;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands webhook-sandbox</c>: the recommended mode, <see cref="WebhookReceiverSandbox"/> (<c>WEBHOOK_SANDBOX_NAME</c>,
/// default <c>webhook-orchestrator</c>; suspended after <c>WEBHOOK_SANDBOX_TIMEOUT_SECONDS</c> idle, default 600).
/// </summary>
internal static class WebhookSandboxCommand
{
    public static Command Create()
    {
        var status = new Option<bool>("--status") { Description = "Print the receiver's sandbox, URL and health" };
        var logs = new Option<bool>("--logs") { Description = "Print the receiver's output" };
        var terminate = new Option<bool>("--terminate") { Description = "Terminate the receiver's sandbox" };
        var register = new Option<bool>("--register")
        {
            Description = "Register the public URL as a webhook endpoint (local control plane; needs ANTHROPIC_API_KEY) and use its signing secret",
        };
        var command = new Command("webhook-sandbox", "Run the webhook receiver inside a sandbox, exposed publicly, suspended when idle and woken by the next delivery")
        {
            status, logs, terminate, register,
        };
        OrchestratorSettings.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            using var sandboxes = SandboxClientFactory.Create();
            var receiver = new WebhookReceiverSandbox(sandboxes, Settings.Get("WEBHOOK_SANDBOX_NAME") ?? "webhook-orchestrator");
            if (parse.GetValue(terminate))
            {
                return await TerminateAsync(parse, receiver, ct);
            }

            if (parse.GetValue(logs))
            {
                foreach (var line in await receiver.ReadLogsAsync(ct))
                {
                    Console.WriteLine(line);
                }

                return 0;
            }

            if (parse.GetValue(status))
            {
                return await PrintStatusAsync(receiver, wake: false, ct);
            }

            return await LaunchAsync(parse, receiver, parse.GetValue(register), ct);
        });
        return command;
    }

    private static async Task<int> LaunchAsync(ParseResult parse, WebhookReceiverSandbox receiver, bool register, CancellationToken ct)
    {
        var options = OrchestratorSettings.Build(parse, NullLogger.Instance);
        var signingKey = register ? null : Settings.Require("ANTHROPIC_WEBHOOK_SIGNING_KEY", "the endpoint's signing secret (whsec_...), or pass --register on a local control plane");
        var progress = new LinePrinter();
        var info = await receiver.GetOrCreateAsync(Settings.Get("WEBHOOK_SANDBOX_IMAGE_NAME"), Settings.Int("WEBHOOK_SANDBOX_TIMEOUT_SECONDS", 600, 1, 30 * 86400), progress, ct);
        var publicUrl = receiver.PublicUrl(info);
        string? endpointId = null;
        var replace = false;
        if (register)
        {
            using var org = CliContext.CreateClient(parse);
            var registration = await RegisterAsync(org, receiver, info, publicUrl, ct);
            if (registration is null)
            {
                return await PrintStatusAsync(receiver, wake: true, ct);
            }

            (endpointId, signingKey) = registration.Value;
            replace = true;
        }

        var passThrough = WebhookReceiverSandbox.PassThroughSettings
            .Select(setting => (setting, Value: Settings.Get(setting)))
            .Where(s => s.Value is not null)
            .ToDictionary(s => s.setting, s => s.Value!);
        var environment = WebhookReceiverSandbox.ReceiverEnvironment(options, signingKey!, SandboxClientFactory.Options(), passThrough);
        if (await receiver.EnsureReceiverAsync(info, ReceiverBinary(), environment, progress, ct, endpointId, replace))
        {
            Console.WriteLine($"started the receiver in {receiver.Name}");
        }

        return await PrintStatusAsync(receiver, wake: true, ct);
    }

    /// <summary>
    /// The native receiver copied into the sandbox: <c>HANDS_RECEIVER_BINARY</c>, else <c>hands-receiver</c> beside this
    /// program (an installed release) or in the clone's <c>artifacts/hands-receiver/</c>, as hands-worker is found.
    /// </summary>
    private static string ReceiverBinary()
    {
        if (Settings.Get("HANDS_RECEIVER_BINARY") is { } configured)
        {
            return File.Exists(configured) ? Path.GetFullPath(configured) : throw new CliException($"HANDS_RECEIVER_BINARY: '{configured}' does not exist.");
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new CliException($"set HANDS_RECEIVER_BINARY to the linux-x64 {WebhookReceiverSandbox.BinaryName} to copy into the receiver's sandbox.");
        }

        return Hands.Engine.Hosting.BinaryLocator.Find(WebhookReceiverSandbox.BinaryName)
            ?? throw new CliException($"{WebhookReceiverSandbox.BinaryName} was not found (looked in {string.Join(", ", Hands.Engine.Hosting.BinaryLocator.Directories(WebhookReceiverSandbox.BinaryName))}): "
                + "install Hands with scripts/install.sh, or publish it (dotnet publish src/Hands.Receiver -c Release -r linux-x64 -o artifacts/hands-receiver) or set HANDS_RECEIVER_BINARY");
    }

    /// <summary>
    /// Terminates the receiver's sandbox, and deletes the webhook endpoint it was registered for (its URL names this
    /// sandbox, so nothing will ever answer it again) when an API key is at hand; otherwise says which one is left.
    /// </summary>
    private static async Task<int> TerminateAsync(ParseResult parse, WebhookReceiverSandbox receiver, CancellationToken ct)
    {
        string? endpointId = null;
        try
        {
            endpointId = await receiver.RecordedEndpointAsync(await receiver.GetAsync(ct), ct);
        }
        catch (Hands.Sandboxes.Client.TensorlakeException)
        {
            // Gone, ended or unreadable: no endpoint to name; the sandbox is terminated all the same.
        }

        await receiver.TerminateAsync(ct);
        Console.WriteLine($"terminated {receiver.Name}");
        if (endpointId is null)
        {
            return 0;
        }

        if (parse.GetValue(CliContext.ApiKey) is null && Environment.GetEnvironmentVariable("ANTHROPIC_API_KEY") is not { Length: > 0 })
        {
            Console.WriteLine($"webhook endpoint {endpointId} still points at it; delete it in the Console (or run again with ANTHROPIC_API_KEY set on a local control plane)");
            return 0;
        }

        using var org = CliContext.CreateClient(parse);
        try
        {
            await org.WebhookEndpoints.DeleteAsync(endpointId, ct);
            Console.WriteLine($"deleted webhook endpoint {endpointId}");
        }
        catch (Hands.Protocol.Client.ManagedAgentsException ex) when (ex.Status == 404)
        {
            // Deleted already.
        }

        return 0;
    }

    /// <summary>
    /// Registers the receiver's public URL once, however often it is run. The endpoints already registered for that URL
    /// are looked up: when the running receiver was started for one of them, that one is kept (the receiver holds its
    /// secret, which the control plane shows only at creation) and any other for the URL is deleted, since the receiver
    /// would refuse every delivery to it (401), and their retries would keep its sandbox awake; null is returned and
    /// the receiver left as it is. Otherwise every endpoint for the URL is deleted and a new one created, whose id and
    /// secret are returned for a receiver started afresh.
    /// </summary>
    private static async Task<(string EndpointId, string SigningKey)?> RegisterAsync(Hands.Protocol.Client.ManagedAgentsClient org, WebhookReceiverSandbox receiver,
        SandboxInfo info, Uri publicUrl, CancellationToken ct)
    {
        var url = publicUrl.ToString();
        var registered = (await org.WebhookEndpoints.ListAsync(ct)).Data.Where(e => e.Url == url).ToList();
        var running = await receiver.RunningEndpointAsync(info, ct);
        var kept = registered.FirstOrDefault(e => e.Id == running && e.DisabledAt is null);
        foreach (var stale in registered.Where(e => e != kept))
        {
            await org.WebhookEndpoints.DeleteAsync(stale.Id, ct);
            Console.WriteLine($"deleted webhook endpoint {stale.Id} -> {url} ({(stale.DisabledAt is null ? "the running receiver does not hold its signing secret" : "disabled")})");
        }

        if (kept is not null)
        {
            Console.WriteLine($"webhook endpoint {kept.Id} -> {url} is registered already and the running receiver verifies it; nothing to change");
            return null;
        }

        var endpoint = await org.WebhookEndpoints.CreateAsync(new CreateWebhookEndpointRequest { Url = url, EventTypes = ["session.status_run_started"] }, ct);
        var secret = endpoint.Secret ?? throw new CliException("the control plane did not return the endpoint's signing secret");
        Console.WriteLine($"registered webhook endpoint {endpoint.Id} -> {url}");
        return (endpoint.Id, secret);
    }

    /// <summary>Prints status, URLs and health; waits for the receiver to answer when <paramref name="wake"/>.</summary>
    private static async Task<int> PrintStatusAsync(WebhookReceiverSandbox receiver, bool wake, CancellationToken ct)
    {
        var info = await receiver.GetAsync(ct);
        var publicUrl = receiver.PublicUrl(info);
        Console.WriteLine($"sandbox     {receiver.Name} ({info.CanonicalId}), {info.Status}{(info.SuspendTier is { } tier ? $" ({tier})" : "")}");
        Console.WriteLine($"public URL  {publicUrl}");
        Console.WriteLine($"health URL  {publicUrl}healthz");
        if (info.Status == SandboxStatus.Suspended && !wake)
        {
            Console.WriteLine("health      not checked: the receiver is suspended and wakes on the next request");
            return 0;
        }

        var health = await WebhookReceiverSandbox.WaitForHealthAsync(publicUrl, TimeSpan.FromSeconds(wake ? 60 : 10), ct);
        Console.WriteLine(health.Healthy ? $"health      {health.LastAnswer}" : $"health      failing: {health.LastAnswer} (see: hands webhook-sandbox --logs)");
        return health.Healthy ? 0 : 1;
    }

    /// <summary>Prints each progress line as it comes, in order (<see cref="Progress{T}"/> would post it to the thread pool).</summary>
    private sealed class LinePrinter : IProgress<string>
    {
        public void Report(string value) => Console.WriteLine(value);
    }
}
