namespace Hands.Engine.Sandboxes;

/// <summary>Where one sandbox's pieces live under the data directory.</summary>
internal sealed class SandboxPaths(string dataDirectory, string id)
{
    public string Root { get; } = Path.Combine(dataDirectory, "sandboxes", id);
    public string Upper => Path.Combine(Root, "upper");
    public string Work => Path.Combine(Root, "work");
    public string RootFs => Path.Combine(Root, "rootfs");
    public string Bundle => Path.Combine(Root, "bundle");
    public string RuncLog => Path.Combine(Root, "runc.log");
    public string Hibernation => Path.Combine(Root, "hibernation");
    public string CriuWork => Path.Combine(Root, "criu-work");
    public string HostsFile => Path.Combine(Root, "hosts");
    public string ForkCriuConfig => Path.Combine(Root, "criu-fork.conf");
    public string NetworkNamespace { get; } = Path.Combine(dataDirectory, "netns", id);
}
