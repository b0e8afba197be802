using System.Text;
using Hands.Engine.Sandboxes;

namespace Hands.Engine.Tests.Rules;

/// <summary>Which processes a memory fork kills before it connects: the quarantine marker, read from a raw environ.</summary>
[Trait("Tier", "Unit")]
public sealed class ForkQuarantineRulesTests
{
    [Theory]
    [InlineData("HANDS_FORK_POLICY=terminate\0PATH=/bin\0", true)]
    [InlineData("PATH=/bin\0HANDS_FORK_POLICY=terminate\0", true)]
    [InlineData("PATH=/bin\0HANDS_FORK_POLICY=terminate", true)]
    [InlineData("HANDS_FORK_POLICY=terminate", true)]
    [InlineData("PATH=/bin\0HANDS_FORK_POLICY=terminated\0", false)]
    [InlineData("PATH=/bin\0XHANDS_FORK_POLICY=terminate\0", false)]
    [InlineData("PATH=/bin\0HANDS_FORK_POLICY=keep\0", false)]
    [InlineData("", false)]
    public void Only_a_whole_marker_entry_quarantines_a_process(string environ, bool marked) =>
        Assert.Equal(marked, ForkQuarantine.IsMarked(Encoding.ASCII.GetBytes(environ)));
}
