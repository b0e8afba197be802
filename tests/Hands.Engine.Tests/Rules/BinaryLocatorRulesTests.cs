using Hands.Engine.Hosting;

namespace Hands.Engine.Tests.Rules;

/// <summary>Where hands looks for hands-sandboxd and hands-worker when neither a flag nor a variable names them.</summary>
[Trait("Tier", "Unit")]
public sealed class BinaryLocatorRulesTests
{
    [Fact]
    public void The_program_directory_comes_first_then_the_artifacts_of_the_clone_it_was_built_in()
    {
        var directories = BinaryLocator.Directories("hands-sandboxd");
        Assert.Equal(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory), directories[0]);

        var clone = new DirectoryInfo(AppContext.BaseDirectory);
        while (!File.Exists(Path.Combine(clone.FullName, "Hands.slnx")))
        {
            clone = clone.Parent ?? throw new InvalidOperationException("these tests run from a clone");
        }

        Assert.Equal(Path.Combine(clone.FullName, "artifacts", "hands-sandboxd"), directories[^1]);
    }

    [Fact]
    public void A_binary_beside_the_program_is_found_and_a_missing_one_is_not()
    {
        var name = "hands-locator-test-" + Guid.NewGuid().ToString("N")[..8];
        Assert.Null(BinaryLocator.Find(name));
        var beside = Path.Combine(AppContext.BaseDirectory, name);
        File.WriteAllText(beside, "");
        try
        {
            Assert.Equal(beside, BinaryLocator.Find(name));
        }
        finally
        {
            File.Delete(beside);
        }
    }
}
