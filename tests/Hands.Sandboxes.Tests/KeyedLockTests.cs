using Hands.Sandboxes.Concurrency;

namespace Hands.Sandboxes.Tests;

/// <summary>The per-key lock table: one holder per key, and no entry left for a key nobody holds or waits for.</summary>
[Trait("Tier", "Unit")]
public sealed class KeyedLockTests
{
    [Fact]
    public async Task A_second_holder_of_a_key_waits_until_the_first_releases()
    {
        var locks = new KeyedLock<string>();
        var first = await locks.AcquireAsync("a", CancellationToken.None);
        var second = locks.AcquireAsync("a", CancellationToken.None).AsTask();
        Assert.False(second.IsCompleted);

        first.Dispose();
        (await second).Dispose();
        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task Different_keys_do_not_wait_for_each_other()
    {
        var locks = new KeyedLock<string>();
        using var a = await locks.AcquireAsync("a", CancellationToken.None);
        var b = locks.AcquireAsync("b", CancellationToken.None);
        Assert.True(b.IsCompletedSuccessfully);
        Assert.Equal(2, locks.Count);
        (await b).Dispose();
        Assert.Equal(1, locks.Count);
    }

    [Fact]
    public async Task The_table_forgets_every_key_once_released()
    {
        var locks = new KeyedLock<string>();
        for (var i = 0; i < 1000; i++)
        {
            using var held = await locks.AcquireAsync($"sandbox-{i}", CancellationToken.None);
        }

        Assert.Equal(0, locks.Count);
    }

    [Fact]
    public async Task A_cancelled_waiter_leaves_nothing_behind_and_releasing_twice_releases_once()
    {
        var locks = new KeyedLock<string>();
        var held = await locks.AcquireAsync("a", CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var waiter = locks.AcquireAsync("a", cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiter);
        Assert.Equal(1, locks.Count);

        held.Dispose();
        held.Dispose();
        Assert.Equal(0, locks.Count);
        using var again = await locks.AcquireAsync("a", CancellationToken.None);
        Assert.Equal(1, locks.Count);
    }
}
