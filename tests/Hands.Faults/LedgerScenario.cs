using System.Globalization;
using System.Text.Json.Nodes;

namespace Hands.Faults;

/// <summary>
/// The scripted agent the fault runs use: one turn of <c>steps</c> bash calls, each of which appends its own line,
/// <c>step SESSION N</c>, to a ledger file in the session's sandbox (and, when a host ledger port is given, posts it to
/// the harness's proxy, <see cref="FaultProxy.LedgerPath"/>, so a sandbox lost with its ledger cannot hide a step run
/// again in its replacement) and then sleeps (so a fault can land while it runs), then a closing message. A line that
/// appears twice is a command executed twice; a successful result whose line is missing is an effect lost.
/// </summary>
public static class LedgerScenario
{
    /// <summary>The scenario's name (the agent's model is <c>scripted:NAME</c>).</summary>
    public const string Name = "ledger";

    /// <summary>The ledger, inside each session's sandbox.</summary>
    public const string LedgerPath = "/workspace/ledger.txt";

    /// <summary>
    /// The scenario file (<c>--scenarios DIR/ledger.json</c>); step N sleeps <paramref name="sleep"/>(N) and posts its
    /// line to <c>host.hands.internal:<paramref name="hostLedgerPort"/></c> when one is given (best effort: 2 s at most).
    /// </summary>
    public static string Json(int steps, Func<int, TimeSpan> sleep, int? hostLedgerPort = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentNullException.ThrowIfNull(sleep);
        var list = new JsonArray();
        for (var n = 0; n < steps; n++)
        {
            var seconds = sleep(n).TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            // A subshell, so the session's persistent shell keeps no descriptor; its output goes nowhere, so the result stays "ok N".
            var post = hostLedgerPort is { } port
                ? $" && (exec 3<>/dev/tcp/host.hands.internal/{port} && printf 'POST {FaultProxy.LedgerPath}{{{{session.id}}}}/{n} HTTP/1.1\\r\\nHost: ledger\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3 && timeout 2 cat <&3) >/dev/null 2>&1"
                : "";
            list.Add(new JsonObject
            {
                ["tool"] = "bash",
                ["input"] = new JsonObject { ["command"] = $"echo \"{Line("{{session.id}}", n)}\" >> {LedgerPath}{post}; sleep {seconds} && echo \"ok {n}\"" },
            });
        }

        list.Add(new JsonObject { ["message"] = $"all {steps} steps done" });
        return new JsonObject { ["turns"] = new JsonArray(new JsonObject { ["steps"] = list }) }.ToJsonString();
    }

    /// <summary>Step <paramref name="step"/>'s ledger line for a session.</summary>
    public static string Line(string sessionId, int step) => $"step {sessionId} {step.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The step a bash call's command is (the N of its ledger line), or null for another command.</summary>
    public static int? StepOf(string? command)
    {
        if (command is null || !command.StartsWith("echo \"step ", StringComparison.Ordinal))
        {
            return null;
        }

        var end = command.IndexOf('"', 6);
        var words = end < 0 ? [] : command[6..end].Split(' ');
        return words.Length == 3 && int.TryParse(words[2], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;
    }
}
