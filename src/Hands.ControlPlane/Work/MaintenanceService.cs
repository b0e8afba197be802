using Hands.ControlPlane.Work;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.ControlPlane;

/// <summary>Periodic upkeep: lapsed leases back to the queue, and deleted sessions' tombstones purged after a minute.</summary>
public sealed class MaintenanceService(ControlPlaneCore core, WorkService work, ILogger<MaintenanceService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250), core.Options.Time);
        var ticks = 0;
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var lapsed = work.SweepLeases();
                if (lapsed > 0)
                {
                    logger.LogInformation("{Count} work item lease(s) lapsed; the items are queued again", lapsed);
                }

                if (++ticks % 240 == 0)
                {
                    PurgeDeletedSessions();
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "maintenance pass failed");
            }
        }
    }

    internal void PurgeDeletedSessions()
    {
        core.Write(scope =>
        {
            var cutoff = scope.NowMs - 60_000;
            var ids = scope.Sql.Query("SELECT id FROM sessions WHERE deleted_at_ms IS NOT NULL AND deleted_at_ms < $c", r => r.GetString(0), ("$c", cutoff));
            foreach (var id in ids)
            {
                scope.Sql.Exec("DELETE FROM events WHERE session_id=$s", ("$s", id));
                scope.Sql.Exec("DELETE FROM sessions_tokens WHERE session_id=$s", ("$s", id));
                scope.Sql.Exec("DELETE FROM work WHERE session_id=$s", ("$s", id));
                scope.Sql.Exec("DELETE FROM sessions WHERE id=$s", ("$s", id));
            }

            return ids.Count;
        });
    }
}
