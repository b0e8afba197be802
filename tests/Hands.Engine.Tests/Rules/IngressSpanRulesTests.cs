using Hands.Engine.Ingress;

namespace Hands.Engine.Tests.Rules;

/// <summary>The ingress names a daemon call by its route, never by a process id or a path the caller chose.</summary>
public sealed class IngressSpanRulesTests
{
    [Theory]
    [InlineData("/api/v1/processes", "/api/v1/processes")]
    [InlineData("/api/v1/processes/run", "/api/v1/processes/run")]
    [InlineData("/api/v1/processes/4711", "/api/v1/processes/{pid}")]
    [InlineData("/api/v1/processes/worker/stdin/close", "/api/v1/processes/{pid}/stdin/close")]
    [InlineData("/api/v1/files", "/api/v1/files")]
    [InlineData("/api/v1/files/list", "/api/v1/files/list")]
    [InlineData("/etc/passwd", "/")]
    [InlineData("/", "/")]
    public void Daemon_routes_are_templates(string path, string route) => Assert.Equal(route, IngressSpan.DaemonRoute(path));
}
