using Hands.Engine.Storage;

namespace Hands.Engine.Sandboxes;

/// <summary>Where one sandbox's pieces live: its files in the data volume, its network namespace beside it.</summary>
internal sealed class SandboxPaths(string dataDirectory, string id)
{
    public string Root { get; } = Path.Combine(DataVolume.MountPointOf(dataDirectory), "sandboxes", id);

    /// <summary>The sandbox's disk image (<see cref="SandboxDisk"/>), mounted at <see cref="Disk"/>.</summary>
    public string DiskImage => Path.Combine(Root, "disk.img");
    public string Disk => Path.Combine(Root, "disk");
    public string Upper => Path.Combine(Disk, "upper");
    public string Work => Path.Combine(Disk, "work");
    public string RootFs => Path.Combine(Root, "rootfs");
    public string Bundle => Path.Combine(Root, "bundle");
    public string RuncLog => Path.Combine(Root, "runc.log");
    public string Hibernation => Path.Combine(Root, "hibernation");
    public string CriuWork => Path.Combine(Root, "criu-work");
    public string HostsFile => Path.Combine(Root, "hosts");
    public string ForkCriuConfig => Path.Combine(Root, "criu-fork.conf");
    public string CriuConfig => Path.Combine(Root, "criu.conf");
    public string NetworkNamespace { get; } = Path.Combine(dataDirectory, "netns", id);
}
