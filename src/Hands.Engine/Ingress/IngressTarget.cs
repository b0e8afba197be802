using System.Globalization;

namespace Hands.Engine.Ingress;

/// <summary>
/// Which sandbox and port a proxied request is for: <c>X-Tensorlake-Sandbox-Id</c> (+ <c>X-Tensorlake-Sandbox-Port</c>)
/// when present, else the first label of <c>Host</c>: <c>{id}.local</c> / <c>{id}.localhost</c> is the sandbox API
/// (port 9501) and <c>{port}-{id}.…</c> a user port. A label that looks like <c>{digits}-{rest}</c> but whose rest is
/// no sandbox is tried as a whole name.
/// </summary>
internal readonly record struct IngressTarget(string Sandbox, int Port, string? AlternativeSandbox = null)
{
    public const int ManagementPort = 9501;

    public static IngressTarget? Parse(string? sandboxHeader, string? portHeader, string host)
    {
        if (!string.IsNullOrEmpty(sandboxHeader))
        {
            var port = int.TryParse(portHeader, NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : ManagementPort;
            return new IngressTarget(sandboxHeader, port);
        }

        var name = host.Split(':')[0];
        var dot = name.IndexOf('.', StringComparison.Ordinal);
        if (dot <= 0 || System.Net.IPAddress.TryParse(name, out _))
        {
            return null;
        }

        var label = name[..dot].ToLowerInvariant();
        var dash = label.IndexOf('-', StringComparison.Ordinal);
        if (dash > 0 && int.TryParse(label[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var userPort) && userPort is > 0 and <= 65535)
        {
            return new IngressTarget(label[(dash + 1)..], userPort, label);
        }

        return new IngressTarget(label, ManagementPort);
    }
}
