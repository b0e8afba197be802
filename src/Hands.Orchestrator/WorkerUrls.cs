namespace Hands.Orchestrator;

/// <summary>How a sandbox names the host: a loopback URL on the host is <c>host.hands.internal</c> inside.</summary>
public static class WorkerUrls
{
    /// <summary>The name the local engine gives the host inside every sandbox.</summary>
    public const string HostName = "host.hands.internal";

    /// <summary>Rewrites a loopback URL to the host's name inside a sandbox; any other URL is returned as is.</summary>
    public static Uri FromHost(Uri url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return url.IsLoopback ? new UriBuilder(url) { Host = HostName }.Uri : url;
    }
}
