using Hands.Cli.Commands;

namespace Hands.Engine.Tests.Rules;

/// <summary>What `hands sandbox network` prints of a server's strings cannot drive the operator's terminal.</summary>
[Trait("Tier", "Unit")]
public sealed class PrintableRulesTests
{
    [Theory]
    [InlineData("api.example.test", "api.example.test")]
    [InlineData("evil\u001b[2J\u001b]0;owned\u0007.test", "evil\uFFFD[[2J\uFFFD]]0;owned\uFFFD.test")]
    [InlineData("line\rover\nwrite", "line\uFFFDover\uFFFDwrite")]
    [InlineData(null, "")]
    public void Control_characters_become_replacement_characters_and_markup_is_escaped(string? value, string printed) =>
        Assert.Equal(printed, SandboxNetworkCommand.Printable(value));
}
