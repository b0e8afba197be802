namespace Hands.Engine;

/// <summary>One program of the host the engine runs, where it was found, and the Debian package that has it.</summary>
/// <param name="Name">What the engine runs (a command looked up on PATH, or a fixed path such as the sandbox init).</param>
/// <param name="Package">The Debian package that installs it (<c>apt-get install PACKAGE</c>).</param>
/// <param name="Path">Where it was found, or null when it is missing.</param>
/// <param name="Use">What the engine needs it for.</param>
/// <param name="Required">False for a program only some features need (the engine starts without it).</param>
public sealed record HostProgram(string Name, string Package, string? Path, string Use, bool Required = true)
{
    /// <summary>True when it was found.</summary>
    public bool Found => Path is not null;
}
