using Hands.Worker.Tools;

namespace Hands.Worker.Journal;

/// <summary>What the journal says about one call that has no posted result: started (and in which processes), or finished.</summary>
/// <param name="Tool">The tool's name.</param>
/// <param name="Since">When the call began (clock ticks since boot): processes older than that belong to earlier calls.</param>
/// <param name="Processes">The helper processes (pid, start time) the call ran in.</param>
/// <param name="Output">The computed result, when the call finished before its worker died.</param>
internal sealed record JournaledCall(string Tool, long Since, IReadOnlyList<(int Pid, long Start)> Processes, ToolOutput? Output);
