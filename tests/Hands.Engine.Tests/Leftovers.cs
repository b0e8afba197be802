using Hands.Faults;

namespace Hands.Engine.Tests;

/// <summary>
/// Checks the host for anything an engine under <c>dataDirectory</c> left (mounts, loop devices, containers, network
/// namespaces, veths, host firewall chains), and removes it after a failed test. The checks live in
/// <see cref="HostLeaks"/>, which the fault-injection harness and the bench share.
/// </summary>
internal static class Leftovers
{
    public static void AssertNone(string dataDirectory)
    {
        var leaks = HostLeaks.Find(dataDirectory);
        Assert.True(leaks.Count == 0, string.Join("; ", leaks));
    }

    /// <inheritdoc cref="HostLeaks.ForwarderProcesses"/>
    public static IReadOnlyList<int> ForwarderProcesses(string dataDirectory) => HostLeaks.ForwarderProcesses(dataDirectory);

    /// <inheritdoc cref="HostLeaks.Remove"/>
    public static void Remove(string dataDirectory) => HostLeaks.Remove(dataDirectory);
}
