using Hands.Common;
using Microsoft.Extensions.Time.Testing;

namespace Hands.Worker.Tests;

/// <summary>
/// <see cref="IdleHeapTrim"/>, which the worker and hands-sandboxd use to give their free heap back once quiet: one
/// full collection per quiet spell after work, none while idle or busy, none before the quiet period has passed.
/// </summary>
public sealed class IdleHeapTrimTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);

    [Fact]
    public void Work_followed_by_a_quiet_spell_is_trimmed_once()
    {
        var time = new FakeTimeProvider();
        using var trim = new IdleHeapTrim(Quiet, time);
        var before = GC.CollectionCount(GC.MaxGeneration);
        trim.Touch();
        time.Advance(Quiet - TimeSpan.FromMilliseconds(1));
        Assert.Equal(0, trim.Trims);
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, trim.Trims);
        Assert.True(GC.CollectionCount(GC.MaxGeneration) > before, "the trim is a full collection");
        time.Advance(TimeSpan.FromMinutes(10));
        Assert.Equal(1, trim.Trims);
    }

    [Fact]
    public void Each_touch_restarts_the_quiet_period()
    {
        var time = new FakeTimeProvider();
        using var trim = new IdleHeapTrim(Quiet, time);
        for (var i = 0; i < 5; i++)
        {
            trim.Touch();
            time.Advance(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(0, trim.Trims);
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, trim.Trims);
    }

    [Fact]
    public void Nothing_is_trimmed_while_busy_or_without_work()
    {
        var time = new FakeTimeProvider();
        var busy = true;
        using var trim = new IdleHeapTrim(Quiet, time, () => busy);
        time.Advance(TimeSpan.FromMinutes(1));
        Assert.Equal(0, trim.Trims);
        trim.Touch();
        time.Advance(Quiet);
        Assert.Equal(0, trim.Trims);
        busy = false;
        trim.Touch();
        time.Advance(Quiet);
        Assert.Equal(1, trim.Trims);
    }

    [Fact]
    public void A_touch_after_dispose_is_ignored()
    {
        var time = new FakeTimeProvider();
        var trim = new IdleHeapTrim(Quiet, time);
        trim.Dispose();
        trim.Touch();
        time.Advance(Quiet);
        Assert.Equal(0, trim.Trims);
    }
}
