using Hands.Orchestrator;
using Hands.Sandboxes.Models;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// <c>HANDS_SANDBOX_POOL</c> on the real engine: a session's sandbox is the pool's warm one, claimed and named for the
/// session; the next acquire of that session reuses it by name; when the pool is full the next session's sandbox is
/// created as without a pool.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class PoolSessionTests(EngineFixture engine)
{
    [Fact]
    public async Task A_session_draws_its_sandbox_from_the_pool_and_falls_back_to_a_create_when_the_pool_is_full()
    {
        var pool = (await engine.Client.CreatePoolAsync(new SandboxPoolRequest
        {
            Image = "host",
            Resources = new SandboxPoolResources { MemoryMb = 256 },
            TimeoutSecs = 600,
            WarmContainers = 1,
            MaxContainers = 1,
        })).PoolId;
        var (first, second) = ("sesn_pool" + Guid.NewGuid().ToString("N")[..10], "sesn_pool" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var warm = Assert.Single(await PoolWaits.IdleAsync(engine.Client, pool, 1));
            var sessions = new SessionSandboxes(engine.Client, new OrchestratorOptions
            {
                EnvironmentId = "env_pool",
                EnvironmentKey = "unused-here",
                Image = "host",
                SandboxPool = pool,
            });

            var (claimed, how) = await sessions.AcquireAsync(first, CancellationToken.None);
            Assert.Equal(SandboxAcquisition.Claimed, how);
            Assert.Equal((warm.Id, SandboxNames.ForSession(first), pool, SandboxStatus.Running), (claimed.CanonicalId, claimed.Name, claimed.PoolId, claimed.Status));

            // Get-or-create by name still comes first: the session's sandbox is reused, nothing is claimed again.
            var (again, howAgain) = await sessions.AcquireAsync(first, CancellationToken.None);
            Assert.Equal((SandboxAcquisition.Reused, claimed.CanonicalId), (howAgain, again.CanonicalId));

            // max_containers 1, held by the first session: the second session's sandbox is created outside the pool.
            var (created, howCreated) = await sessions.AcquireAsync(second, CancellationToken.None);
            Assert.Equal(SandboxAcquisition.Created, howCreated);
            Assert.Equal((SandboxNames.ForSession(second), (string?)null, SandboxStatus.Running), (created.Name, created.PoolId, created.Status));
            Assert.Single((await engine.Client.GetPoolAsync(pool)).Containers!);
        }
        finally
        {
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(first));
            await engine.DeleteQuietlyAsync(SandboxNames.ForSession(second));
            await PoolTests.DeletePoolQuietlyAsync(engine.Client, pool);
        }
    }
}
