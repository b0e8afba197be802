using System.Text.Json.Serialization;

namespace Hands.Engine.Network;

/// <summary>
/// What the engine asks of its forwarder process, one JSON object per line on the forwarder's control socket (a Unix
/// socket in the root-only data directory). A sync carries the whole desired state, never a change, so a forwarder that
/// missed one (it was restarted, or the engine was) is right again after the next.
/// </summary>
internal sealed class ForwarderRequest
{
    /// <summary><c>sync</c> (make the listeners match), <c>busy</c> (which slots have a connection open) or <c>exit</c> (close everything and end the process).</summary>
    public required string Type { get; init; }

    /// <summary>The host ports forwarded (sync).</summary>
    public IReadOnlyList<int> Ports { get; init; } = [];

    /// <summary>By slot index: by port, the sandbox's HTTP allow-list for it, or null for an unfiltered pipe (sync).</summary>
    public Dictionary<int, Dictionary<int, List<string>?>> Slots { get; init; } = [];
}

/// <summary>The forwarder's answer to one request.</summary>
internal sealed class ForwarderReply
{
    /// <summary>True when every slot asked for is listening (sync) or the forwarder is exiting (exit).</summary>
    public bool Ok { get; init; }

    /// <summary>By slot index, why its listeners could not be opened.</summary>
    public Dictionary<int, string> Failed { get; init; } = [];

    /// <summary>The slots with a connection open through their forwards (busy).</summary>
    public IReadOnlyList<int> Busy { get; init; } = [];
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(ForwarderRequest))]
[JsonSerializable(typeof(ForwarderReply))]
internal sealed partial class ForwarderJson : JsonSerializerContext;
