using System.CommandLine;
using Hands.Cli.Configuration;
using Hands.Protocol.Client;
using Hands.Sandboxes.Client;
using Hands.Webhooks;
using Spectre.Console;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands doctor</c>: checks every credential and URL the verbs use, the sandbox provider, and (on Linux) what the
/// local engine needs; says what to fix. Values of keys are never printed.
/// </summary>
internal static class DoctorCommand
{
    private sealed record Finding(bool Ok, string Name, string Detail, bool Fatal = true);

    public static Command Create()
    {
        var command = new Command("doctor", "Check credentials, URLs, the sandbox provider, the engine's prerequisites and the worker binary");
        command.SetAction(async (parse, ct) =>
        {
            var findings = new List<Finding>();
            var baseUrl = Settings.Get("ANTHROPIC_BASE_URL") ?? CliContext.LocalDefault;
            findings.Add(await CheckApiAsync(parse, baseUrl, ct));
            findings.Add(await CheckEnvironmentAsync(baseUrl, ct));
            findings.Add(CheckSigningKey());
            findings.Add(await CheckSandboxesAsync(ct));
            if (OperatingSystem.IsLinux())
            {
                findings.AddRange(await CheckEngineAsync(ct));
            }

            var console = AnsiConsole.Console;
            foreach (var f in findings)
            {
                var mark = f.Ok ? "[green]✓[/]" : f.Fatal ? "[red]✗[/]" : "[yellow]![/]";
                console.MarkupLine($"{mark} {Markup.Escape(f.Name),-28} {Markup.Escape(f.Detail)}");
            }

            return findings.Any(f => !f.Ok && f.Fatal) ? 1 : 0;
        });
        return command;
    }

    private static async Task<Finding> CheckApiAsync(ParseResult parse, string baseUrl, CancellationToken ct)
    {
        if (Settings.Get("ANTHROPIC_API_KEY") is null && parse.GetValue(CliContext.ApiKey) is null)
        {
            return new Finding(false, "ANTHROPIC_API_KEY", "not set: needed by session, agent, env and stats (the key hands control-plane printed)", Fatal: false);
        }

        try
        {
            using var client = CliContext.CreateClient(parse);
            await client.Agents.ListAsync(limit: 1, cancellationToken: ct);
            return new Finding(true, "ANTHROPIC_API_KEY", $"accepted by {baseUrl}");
        }
        catch (ManagedAgentsException ex) when (ex.Status is 401 or 403)
        {
            return new Finding(false, "ANTHROPIC_API_KEY", $"refused by {baseUrl} ({ex.Status}): set the organization key of that API");
        }
        catch (ManagedAgentsException ex) when (ex.Status == 0)
        {
            return new Finding(false, "ANTHROPIC_BASE_URL", $"{baseUrl} does not answer: start it (hands control-plane, or hands up) or fix the URL");
        }
    }

    private static async Task<Finding> CheckEnvironmentAsync(string baseUrl, CancellationToken ct)
    {
        var id = Settings.Get("ANTHROPIC_ENVIRONMENT_ID");
        var key = Settings.Get("ANTHROPIC_ENVIRONMENT_KEY");
        if (id is null || key is null)
        {
            return new Finding(false, "ANTHROPIC_ENVIRONMENT_ID/_KEY", $"{(id is null ? "ANTHROPIC_ENVIRONMENT_ID" : "ANTHROPIC_ENVIRONMENT_KEY")} not set: needed by poll, webhook and webhook-sandbox (hands env create NAME; hands env key ID)", Fatal: false);
        }

        try
        {
            using var client = new ManagedAgentsClient(ManagedAgentsCredential.Bearer(key), new ManagedAgentsClientOptions { BaseUrl = new Uri(baseUrl), MaxRetries = 0 });
            var stats = await client.Work.StatsAsync(id, ct);
            return new Finding(true, "ANTHROPIC_ENVIRONMENT_KEY", $"serves {id} (queue depth {stats.Depth})");
        }
        catch (ManagedAgentsException ex) when (ex.Status is 401 or 403 or 404)
        {
            return new Finding(false, "ANTHROPIC_ENVIRONMENT_KEY", $"refused for {id} ({ex.Status}): the key must be one minted for that environment (hands env key {id})");
        }
        catch (ManagedAgentsException ex)
        {
            return new Finding(false, "ANTHROPIC_ENVIRONMENT_KEY", $"could not be checked: {ex.Message}");
        }
    }

    private static Finding CheckSigningKey() => Settings.Get("ANTHROPIC_WEBHOOK_SIGNING_KEY") switch
    {
        null => new Finding(false, "ANTHROPIC_WEBHOOK_SIGNING_KEY", "not set: needed by webhook and webhook-sandbox only", Fatal: false),
        var key when WebhookSecret.IsWellFormed(key) => new Finding(true, "ANTHROPIC_WEBHOOK_SIGNING_KEY", "well formed (whsec_...)"),
        _ => new Finding(false, "ANTHROPIC_WEBHOOK_SIGNING_KEY", "malformed: expected 'whsec_' followed by base64, as shown when the endpoint was registered"),
    };

    private static async Task<Finding> CheckSandboxesAsync(CancellationToken ct)
    {
        var options = SandboxClientFactory.Options();
        try
        {
            using var client = new TensorlakeClient(options);
            await client.ListAsync(limit: 1, cancellationToken: ct);
            return new Finding(true, "sandbox provider", $"{options.ApiUrl} answers");
        }
        catch (TensorlakeException ex) when (ex.Status is 401 or 403)
        {
            return new Finding(false, "sandbox provider", $"{options.ApiUrl} refused the key ({ex.Status}): set TENSORLAKE_API_KEY, or HANDS_ENGINE_API_KEY for a local engine started with one");
        }
        catch (Exception ex) when (ex is TensorlakeException or HttpRequestException)
        {
            return new Finding(false, "sandbox provider", $"{options.ApiUrl} does not answer: start the local engine (sudo hands engine, or hands up) or set TENSORLAKE_API_KEY for Tensorlake's cloud");
        }
    }

    /// <summary>Where the local engine's key comes from: the engine makes one on first start, root-only in its data directory.</summary>
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static Finding EngineKeyFinding()
    {
        var file = Hands.Engine.Api.EngineApiKeyFile.PathIn(SandboxClientFactory.LocalEngineData);
        if (Environment.GetEnvironmentVariable("HANDS_ENGINE_API_KEY") is { Length: > 0 })
        {
            return new Finding(true, "engine API key", "HANDS_ENGINE_API_KEY is set");
        }

        return Hands.Engine.Api.EngineApiKeyFile.TryRead(SandboxClientFactory.LocalEngineData) is not null
            ? new Finding(true, "engine API key", $"read from {file} (root only)")
            : new Finding(false, "engine API key", $"{file} not readable: the engine makes it on first start; run hands as root, or export HANDS_ENGINE_API_KEY=$(sudo cat {file}) (HANDS_ENGINE_DATA names another data directory)", Fatal: false);
    }

    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    private static async Task<IEnumerable<Finding>> CheckEngineAsync(CancellationToken ct)
    {
        var check = await Hands.Engine.EnginePrerequisites.CheckAsync(new Hands.Engine.EngineOptions(), ct);
        return
        [
            check.Problem is null ? new Finding(true, "local engine", "root, runc, network tools, tini and hands-sandboxd found") : new Finding(false, "local engine", check.Problem, Fatal: false),
            check.Problem is not null ? new Finding(false, "CRIU", "not checked (the engine cannot start here)", Fatal: false)
                : check.CriuProblem is null ? new Finding(true, "CRIU", "criu check passes: memory snapshots and hibernation on")
                : new Finding(false, "CRIU", check.CriuProblem, Fatal: false),
            check.ConntrackProblem is null ? new Finding(true, "network telemetry", "conntrack found: connections and policy refusals are recorded")
                : new Finding(false, "network telemetry", check.ConntrackProblem, Fatal: false),
            check.Worker is not null ? new Finding(true, "hands-worker", check.Worker)
                : new Finding(false, "hands-worker", $"not found beside hands ({string.Join(", ", Hands.Engine.Hosting.BinaryLocator.Directories("hands-worker"))}): install Hands with scripts/install.sh, or publish it (dotnet publish src/Hands.Worker -c Release -r linux-x64 -o artifacts/hands-worker) or set HANDS_WORKER_BINARY", Fatal: false),
            EngineKeyFinding(),
        ];
    }
}
