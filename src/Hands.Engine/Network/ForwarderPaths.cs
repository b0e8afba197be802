namespace Hands.Engine.Network;

/// <summary>Where an engine's forwarder process keeps its control socket, lock, pid and log: <c>{data}/forwarder/</c> (root only).</summary>
internal sealed class ForwarderPaths(string dataDirectory)
{
    public string Directory { get; } = Path.Combine(dataDirectory, "forwarder");

    public string Socket => Path.Combine(Directory, "control.sock");

    public string LockFile => Path.Combine(Directory, "lock");

    public string PidFile => Path.Combine(Directory, "pid");

    public string LogFile => Path.Combine(Directory, "forwarder.log");
}
