namespace Hands.Faults;

/// <summary>A kind of fault the harness injects.</summary>
public enum FaultKind
{
    /// <summary>SIGKILL of the orchestrator (<c>hands poll</c>), started again after the fault's hold.</summary>
    KillOrchestrator,

    /// <summary>SIGKILL of one session's <c>hands-worker</c> inside its sandbox (through the engine's process API); nothing restarts it but the system.</summary>
    KillWorker,

    /// <summary>SIGKILL of the control plane, started again after the hold.</summary>
    KillControlPlane,

    /// <summary>SIGKILL of the engine, started again after the hold.</summary>
    KillEngine,

    /// <summary>Every request to the control plane (workers' and orchestrator's) answered 500 for the hold.</summary>
    Burst500,

    /// <summary>Every request to the control plane answered 429 (<c>retry-after: 1</c>) for the hold.</summary>
    Burst429,

    /// <summary>The network between the workers and the control plane cut for the hold.</summary>
    NetworkCut,
}

/// <summary>When, in a session's life, a fault is injected.</summary>
public enum FaultPoint
{
    /// <summary>At once.</summary>
    Now,

    /// <summary>While a session's sandbox is being made and its worker started (its sandbox just appeared, no tool result yet).</summary>
    DuringSpawn,

    /// <summary>While a step's command runs (its ledger line is written, its result not yet posted).</summary>
    WhileStepRuns,

    /// <summary>Right after a step's result arrived.</summary>
    AfterStep,
}

/// <summary>One fault to inject: what, when, and for how long (the restart delay of a kill, the length of a burst or cut).</summary>
/// <param name="Kind">What.</param>
/// <param name="Point">When, in a session's life.</param>
/// <param name="Hold">How long the process stays dead, or the burst or cut lasts (ignored for a worker: the system replaces it).</param>
/// <param name="Before">How long to wait before looking for <paramref name="Point"/>.</param>
public sealed record PlannedFault(FaultKind Kind, FaultPoint Point, TimeSpan Hold, TimeSpan Before);

/// <summary>A fault as injected.</summary>
/// <param name="Plan">What was planned.</param>
/// <param name="At">When, from the start of the run.</param>
/// <param name="PointReached">Whether <see cref="PlannedFault.Point"/> was seen (else it was injected when the wait for it ran out).</param>
/// <param name="Target">What it hit (a session, a pid), for the report.</param>
public sealed record InjectedFault(PlannedFault Plan, TimeSpan At, bool PointReached, string Target);

/// <summary>Schedules of faults.</summary>
public static class FaultSchedules
{
    /// <summary>
    /// Endless random faults from <paramref name="seed"/>: every kind, at every point, killed processes restarted after
    /// 0 to 1.5 lease TTLs (the engine's outage kept under <paramref name="maxEngineOutage"/>), bursts of 0.5 to 3 s,
    /// cuts either short (1 to 3 s) or longer than the TTL (TTL + 2 to 6 s), 1 to 6 s apart.
    /// </summary>
    public static IEnumerable<PlannedFault> Random(int seed, TimeSpan leaseTtl, TimeSpan maxEngineOutage)
    {
        var rng = new Random(seed);
        var kinds = Enum.GetValues<FaultKind>();
        var points = Enum.GetValues<FaultPoint>();
        TimeSpan Seconds(double from, double to) => TimeSpan.FromSeconds(Math.Round(from + (rng.NextDouble() * (to - from)), 1));
        while (true)
        {
            var kind = kinds[rng.Next(kinds.Length)];
            var point = points[rng.Next(points.Length)];
            var hold = kind switch
            {
                FaultKind.KillEngine => Seconds(0, maxEngineOutage.TotalSeconds),
                FaultKind.KillControlPlane or FaultKind.KillOrchestrator => Seconds(0, leaseTtl.TotalSeconds * 1.5),
                FaultKind.Burst500 or FaultKind.Burst429 => Seconds(0.5, 3),
                FaultKind.NetworkCut => rng.Next(2) == 0 ? Seconds(1, 3) : leaseTtl + Seconds(2, 6),
                _ => TimeSpan.Zero,
            };
            yield return new PlannedFault(kind, point, hold, Seconds(1, 6));
        }
    }
}
