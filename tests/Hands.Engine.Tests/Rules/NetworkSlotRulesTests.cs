using Hands.Engine.Network;

namespace Hands.Engine.Tests.Rules;

/// <summary>Slot allocation: a freed address is the last to be handed out again.</summary>
[Trait("Tier", "Unit")]
public sealed class NetworkSlotRulesTests
{
    [Fact]
    public void A_freed_slot_is_handed_out_again_only_after_every_later_one()
    {
        Assert.Equal(1, NetworkSlot.Allocate([]).Index);
        // Slot 2 was freed just now (3 is the last handed out): 4 comes next, not 2.
        Assert.Equal(4, NetworkSlot.Allocate([1, 3], last: 3).Index);
        Assert.Equal(5, NetworkSlot.Allocate([1, 3, 4], last: 4).Index);
        // At the top it wraps round to the lowest free one.
        Assert.Equal(2, NetworkSlot.Allocate([1, 3], last: NetworkSlot.MaxIndex).Index);
        Assert.Equal(2, NetworkSlot.Allocate([1, 3, NetworkSlot.MaxIndex], last: NetworkSlot.MaxIndex - 1).Index);
    }

    [Fact]
    public void Every_slot_in_use_is_refused()
    {
        Assert.Throws<InvalidOperationException>(() => NetworkSlot.Allocate(Enumerable.Range(1, NetworkSlot.MaxIndex), last: 17));
    }
}
