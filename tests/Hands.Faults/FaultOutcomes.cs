using System.Globalization;

namespace Hands.Faults;

/// <summary>What one session's history and ledger show once its turn is over.</summary>
/// <param name="SessionId">The session.</param>
/// <param name="Completed">Its turn ended with <c>end_turn</c> after every step's call.</param>
/// <param name="ToolCalls">Tool calls it emitted.</param>
/// <param name="Lost">Calls with no result.</param>
/// <param name="PostedTwice">Calls with more than one result (each extra result counts).</param>
/// <param name="ExecutedTwice">Ledger lines beyond the first of each step (a command run again).</param>
/// <param name="EffectsMissing">Calls answered as successful whose ledger line is missing.</param>
/// <param name="Interrupted">Calls answered "interrupted" (their worker died while they ran).</param>
/// <param name="SandboxReplaced">Its sandbox was lost and made again after work began in it (a step's line reached the host but is not in the sandbox's ledger, or another sandbox served its first result).</param>
/// <param name="Details">What went wrong, for the report.</param>
public sealed record SessionAccount(string SessionId, bool Completed, int ToolCalls, int Lost, int PostedTwice, int ExecutedTwice, int EffectsMissing,
    int Interrupted, bool SandboxReplaced, IReadOnlyList<string> Details);

/// <summary>The counted outcomes of a fault run, and the table that prints them.</summary>
public sealed class FaultOutcomes
{
    /// <summary>The seed of a random schedule, if it was one.</summary>
    public int? Seed { get; init; }

    /// <summary>Sessions × steps, for the heading.</summary>
    public string Shape { get; init; } = "";

    /// <summary>Faults injected, in order.</summary>
    public List<InjectedFault> Faults { get; } = [];

    /// <summary>Planned faults that found nothing to hit (no worker running, say) and were not counted as injected.</summary>
    public List<string> FaultsNotInjected { get; } = [];

    /// <summary>Each session's account.</summary>
    public List<SessionAccount> Sessions { get; } = [];

    /// <summary>Sessions whose sandbox was lost and made again after work began in it (its ledger and journal lost with it).</summary>
    public int SandboxesReplaced => Sessions.Count(s => s.SandboxReplaced);

    /// <summary>What the running engine held that no record named, after the last recovery.</summary>
    public List<string> OrphansAfterRecovery { get; } = [];

    /// <summary>What was left on the host after teardown.</summary>
    public List<string> LeaksAfterTeardown { get; } = [];

    /// <summary>How many times each process was started (restarts are the starts after the first).</summary>
    public Dictionary<string, int> Starts { get; } = [];

    /// <summary>Requests the proxies answered 500 / 429, and connections a cut dropped.</summary>
    public (long Answered500, long Answered429, long CutDropped) Proxied { get; set; }

    /// <summary>From the first session to the last end of turn.</summary>
    public TimeSpan Elapsed { get; set; }

    /// <summary>Sessions whose turn ended with end_turn after all their steps.</summary>
    public int Completed => Sessions.Count(s => s.Completed);

    /// <summary>Tool calls in all.</summary>
    public int ToolCalls => Sessions.Sum(s => s.ToolCalls);

    /// <summary>Calls with no result.</summary>
    public int Lost => Sessions.Sum(s => s.Lost);

    /// <summary>Results posted twice.</summary>
    public int PostedTwice => Sessions.Sum(s => s.PostedTwice);

    /// <summary>Commands executed twice.</summary>
    public int ExecutedTwice => Sessions.Sum(s => s.ExecutedTwice);

    /// <summary>Successful results whose effect is missing.</summary>
    public int EffectsMissing => Sessions.Sum(s => s.EffectsMissing);

    /// <summary>Calls answered "interrupted".</summary>
    public int Interrupted => Sessions.Sum(s => s.Interrupted);

    /// <summary>Faults injected of one kind.</summary>
    public int Injected(FaultKind kind) => Faults.Count(f => f.Plan.Kind == kind);

    /// <summary>True when nothing was lost, nothing ran or was posted twice, every session completed and nothing leaked.</summary>
    public bool Clean => Sessions.Count > 0 && Completed == Sessions.Count && Lost == 0 && PostedTwice == 0 && ExecutedTwice == 0 && EffectsMissing == 0
        && SandboxesReplaced == 0 && OrphansAfterRecovery.Count == 0 && LeaksAfterTeardown.Count == 0;

    /// <summary>The outcome table (markdown), then the faults in order and every problem found.</summary>
    public IEnumerable<string> Report()
    {
        string Row(string what, object count, string expected) => string.Create(CultureInfo.InvariantCulture, $"| {what} | {count} | {expected} |");
        yield return "| outcome | count | must be |";
        yield return "|---|---|---|";
        foreach (var kind in Enum.GetValues<FaultKind>())
        {
            yield return Row($"faults injected: {Describe(kind)}", Injected(kind), "—");
        }

        yield return Row("faults planned but not injected (nothing to hit)", FaultsNotInjected.Count, "—");
        yield return Row("process restarts (control plane / engine / orchestrator)",
            $"{Restarts("control-plane")} / {Restarts("engine")} / {Restarts("orchestrator")}", "—");
        yield return Row("requests answered 500 / 429 by the proxies, connections dropped by cuts", $"{Proxied.Answered500} / {Proxied.Answered429} / {Proxied.CutDropped}", "—");
        yield return Row("sessions completed (end_turn after every step)", $"{Completed} of {Sessions.Count}", "all");
        yield return Row("tool calls", ToolCalls, "—");
        yield return Row("tool calls lost (tool_use without tool_result)", Lost, "0");
        yield return Row("results posted twice (two tool_results for one tool_use)", PostedTwice, "0");
        yield return Row("commands executed twice (a ledger line twice)", ExecutedTwice, "0");
        yield return Row("successful results whose ledger line is missing", EffectsMissing, "0");
        yield return Row("calls answered \"interrupted\"", Interrupted, "allowed");
        yield return Row("session sandboxes lost and made again", SandboxesReplaced, "0");
        yield return Row("orphans after recovery (containers, volume dirs, netns, veths, cgroups, layers, checkpoints)", OrphansAfterRecovery.Count, "0");
        yield return Row("leaks after teardown (mounts, loops, containers, netns, veths, firewall, cgroups, volume)", LeaksAfterTeardown.Count, "0");
        yield return "";
        yield return "Faults, in order:";
        foreach (var f in Faults)
        {
            yield return "- " + Line(f);
        }

        foreach (var skipped in FaultsNotInjected)
        {
            yield return "- not injected: " + skipped;
        }

        var problems = Sessions.SelectMany(s => s.Details).Concat(OrphansAfterRecovery.Select(o => "orphan: " + o))
            .Concat(LeaksAfterTeardown.Select(l => "leak: " + l)).ToList();
        if (problems.Count > 0)
        {
            yield return "";
            yield return "Problems:";
            foreach (var problem in problems)
            {
                yield return "- " + problem;
            }
        }
    }

    /// <summary>One injected fault in words.</summary>
    public static string Line(InjectedFault fault)
    {
        ArgumentNullException.ThrowIfNull(fault);
        return string.Create(CultureInfo.InvariantCulture,
            $"+{fault.At.TotalSeconds:0.0} s {Describe(fault.Plan.Kind)} {PointText(fault.Plan.Point)}{(fault.PointReached ? "" : " (point not seen in time: injected anyway)")}, {HoldText(fault.Plan)}; {fault.Target}");
    }

    private int Restarts(string process) => Starts.TryGetValue(process, out var n) ? Math.Max(0, n - 1) : 0;

    /// <summary>A fault kind in words.</summary>
    public static string Describe(FaultKind kind) => kind switch
    {
        FaultKind.KillOrchestrator => "SIGKILL orchestrator",
        FaultKind.KillWorker => "SIGKILL worker",
        FaultKind.KillControlPlane => "SIGKILL control plane",
        FaultKind.KillEngine => "SIGKILL engine",
        FaultKind.Burst500 => "500 burst",
        FaultKind.Burst429 => "429 burst",
        FaultKind.NetworkCut => "network cut workers ↔ control plane",
        _ => kind.ToString(),
    };

    private static string PointText(FaultPoint point) => point switch
    {
        FaultPoint.DuringSpawn => "during a spawn",
        FaultPoint.WhileStepRuns => "while a step runs",
        FaultPoint.AfterStep => "right after a step",
        _ => "at a random moment",
    };

    private static string HoldText(PlannedFault plan) => plan.Kind switch
    {
        FaultKind.KillWorker => "replaced by the system",
        FaultKind.Burst500 or FaultKind.Burst429 or FaultKind.NetworkCut => string.Create(CultureInfo.InvariantCulture, $"for {plan.Hold.TotalSeconds:0.0} s"),
        _ => string.Create(CultureInfo.InvariantCulture, $"restarted after {plan.Hold.TotalSeconds:0.0} s"),
    };
}
