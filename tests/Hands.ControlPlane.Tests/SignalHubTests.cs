using Hands.ControlPlane.Infrastructure;

namespace Hands.ControlPlane.Tests;

/// <summary>Wake-ups carry no data and leave nothing behind: memory stays bounded however many sessions come and go.</summary>
public sealed class SignalHubTests
{
    [Fact]
    public async Task A_notify_wakes_every_waiter_once_and_keys_are_dropped_with_their_last_waiter()
    {
        var hub = new SignalHub();
        var a = hub.Subscribe("s1");
        var b = hub.Subscribe("s1");
        hub.Notify("s1");
        Assert.True(await a.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.True(await b.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None));
        Assert.False(await a.WaitAsync(TimeSpan.FromMilliseconds(20), CancellationToken.None)); // consumed

        hub.Notify("s1"); // a notify between two waits is not lost
        Assert.True(await a.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None));

        a.Dispose();
        Assert.Equal(1, hub.KeyCount);
        b.Dispose();
        b.Dispose();
        Assert.Equal(0, hub.KeyCount);
        hub.Notify("nobody-listens"); // no entry is created for a key without waiters
        Assert.Equal(0, hub.KeyCount);

        for (var i = 0; i < 10_000; i++)
        {
            using var w = hub.Subscribe("session-" + i);
            hub.Notify("session-" + i);
        }

        Assert.Equal(0, hub.KeyCount);
    }
}
