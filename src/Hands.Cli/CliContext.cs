using System.CommandLine;
using Hands.Protocol.Client;

namespace Hands.Cli;

/// <summary>
/// Where app-side commands connect: <c>--base-url</c> / <c>ANTHROPIC_BASE_URL</c> and <c>--api-key</c> /
/// <c>ANTHROPIC_API_KEY</c> (flags win over the environment). Keys are never printed.
/// </summary>
internal static class CliContext
{
    public static readonly Option<string?> BaseUrl = new("--base-url")
    {
        Description = "API base URL (default: $ANTHROPIC_BASE_URL, else http://127.0.0.1:8787, the local control plane)",
        Recursive = true,
    };

    public static readonly Option<string?> ApiKey = new("--api-key")
    {
        Description = "Organization API key (default: $ANTHROPIC_API_KEY). Prefer the variable: flags show in process listings",
        Recursive = true,
    };

    public const string LocalDefault = "http://127.0.0.1:8787";

    /// <summary>For the serving verbs: prints how to stop, waits for Ctrl-C, and says it is stopping.</summary>
    public static async Task ServeUntilCancelledAsync(string howToStop, CancellationToken cancellationToken)
    {
        Console.WriteLine(howToStop);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
            Console.WriteLine("stopping...");
        }
    }

    public static ManagedAgentsClient CreateClient(ParseResult parse)
    {
        var baseUrl = parse.GetValue(BaseUrl) ?? Environment.GetEnvironmentVariable("ANTHROPIC_BASE_URL") ?? LocalDefault;
        var key = parse.GetValue(ApiKey) ?? Environment.GetEnvironmentVariable("ANTHROPIC_API_KEY");
        if (string.IsNullOrWhiteSpace(key))
        {
            throw new CliException("No API key: set ANTHROPIC_API_KEY (the key `hands control-plane` printed when it first started) or pass --api-key.");
        }

        if (!Uri.TryCreate(baseUrl, UriKind.Absolute, out var uri))
        {
            throw new CliException($"--base-url / ANTHROPIC_BASE_URL: '{baseUrl}' is not an absolute URL.");
        }

        return new ManagedAgentsClient(ManagedAgentsCredential.ApiKey(key), new ManagedAgentsClientOptions { BaseUrl = uri });
    }
}

/// <summary>A user-facing error: printed as one line, exit code 1, no stack trace.</summary>
internal sealed class CliException : Hands.Common.HandsException
{
    public CliException() { }

    public CliException(string message) : base(message) { }

    public CliException(string message, Exception innerException) : base(message, innerException) { }
}
