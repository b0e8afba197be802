using System.Text.RegularExpressions;
using Hands.Engine.Hosting;
using Hands.Engine.Network;
using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests;

/// <summary>
/// The network namespaces made ahead for memory forks (<see cref="Network.SpareNetworks"/>): a fork child takes one with
/// its slot, gets its parent's egress policy on it rather than the default the spare was made with (or keeps the
/// default, the same rules for its slot), and connects; a create makes its own; the stock refills; a stop destroys the
/// spares, and a start removes what a dead engine left (a killed one's: <see cref="CrashRecoveryTests"/>,
/// <c>fork.spare-taken</c>).
/// </summary>
[Collection(EngineCollection.Name)]
public sealed partial class SpareNetworksTests
{
    private const int Target = 2;

    [Fact]
    public async Task Memory_forks_take_spare_networks_with_their_parents_policy_and_no_spare_outlives_the_engine()
    {
        var data = Path.Combine(Path.GetTempPath(), "hands-engine-spares-" + Guid.NewGuid().ToString("N")[..8]);
        var engine = await StartAsync(data);
        try
        {
            Assert.True(engine.CriuAvailable, $"CRIU is not available: {engine.Sandboxes.CriuProblem}");
            var sandboxes = engine.Sandboxes;
            var spares = sandboxes.SpareNetworks;
            await Eventually.TrueAsync(() => spares.Count == Target, "the spare networks to be made");
            var spareSlots = spares.ReservedSlots.ToHashSet();
            foreach (var slot in spareSlots)
            {
                Assert.True(SandboxNetwork.Exists(spares.FileOf(slot)), $"spare {slot} is mounted");
                Assert.Equal("down", Operstate(Slot(data, slot)));
            }

            using var client = EngineFixture.NewClient(engine);
            // A create makes its own network (spares are for memory forks), with a policy the spares do not have.
            var policy = new NetworkPolicy { AllowInternetAccess = false, AllowOut = ["192.0.2.0/24"] };
            var parent = await client.CreateAsync(new CreateSandboxRequest { Image = "host", Network = policy });
            var parentSlot = sandboxes.SlotOf(sandboxes.FindAlive(parent.CanonicalId)!);
            Assert.DoesNotContain(parentSlot.Index, spareSlots);

            var snapshot = await client.SnapshotAsync(parent.CanonicalId, SnapshotType.Memory);
            var child = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = snapshot.SnapshotId });
            var childSlot = sandboxes.SlotOf(sandboxes.FindAlive(child.CanonicalId)!);
            Assert.Contains(childSlot.Index, spareSlots);
            Assert.False(File.Exists(spares.FileOf(childSlot.Index)), "the taken spare is still under its spare name");
            Assert.True(SandboxNetwork.Exists(sandboxes.PathsOf(child.CanonicalId).NetworkNamespace), "the child's namespace is mounted under its own name");
            Assert.Equal("up", Operstate(childSlot));
            var address = await client.Proxy(child).RunAsync(new RunProcessRequest { Command = "sh", Args = ["-c", "ip -4 -o addr show eth0"] });
            Assert.Contains($" {childSlot.SandboxAddress}/30 ", address.Stdout, StringComparison.Ordinal);
            // The parent's rules, rendered for the child's slot: the policy, not the spare's default rules.
            Assert.Equal(ForSlot(await RulesAsync(sandboxes.PathsOf(parent.CanonicalId).NetworkNamespace), parentSlot, childSlot),
                await RulesAsync(sandboxes.PathsOf(child.CanonicalId).NetworkNamespace));

            await Eventually.TrueAsync(() => spares.Count == Target, "the spare networks to refill");
            Assert.DoesNotContain(childSlot.Index, spares.ReservedSlots);
            await client.DeleteAsync(child.CanonicalId);
            await client.DeleteSnapshotAsync(snapshot.SnapshotId);
            await client.DeleteAsync(parent.CanonicalId);

            // A parent with the default rules: its fork keeps the spare's, which are the same rules for the fork's slot.
            var plain = await client.CreateAsync(new CreateSandboxRequest { Image = "host" });
            var plainSlot = sandboxes.SlotOf(sandboxes.FindAlive(plain.CanonicalId)!);
            var plainSnapshot = await client.SnapshotAsync(plain.CanonicalId, SnapshotType.Memory);
            spareSlots = spares.ReservedSlots.ToHashSet();
            var plainChild = await client.CreateAsync(new CreateSandboxRequest { SnapshotId = plainSnapshot.SnapshotId });
            var plainChildSlot = sandboxes.SlotOf(sandboxes.FindAlive(plainChild.CanonicalId)!);
            Assert.Contains(plainChildSlot.Index, spareSlots);
            Assert.Equal(ForSlot(await RulesAsync(sandboxes.PathsOf(plain.CanonicalId).NetworkNamespace), plainSlot, plainChildSlot),
                await RulesAsync(sandboxes.PathsOf(plainChild.CanonicalId).NetworkNamespace));
            await client.DeleteAsync(plainChild.CanonicalId);
            await client.DeleteSnapshotAsync(plainSnapshot.SnapshotId);
            await client.DeleteAsync(plain.CanonicalId);
            await Eventually.TrueAsync(() => spares.Count == Target, "the spare networks to refill again");

            // A stop destroys the spares.
            var ready = spares.ReservedSlots.ToList();
            await engine.DisposeAsync();
            foreach (var slot in ready)
            {
                Assert.False(File.Exists(spares.FileOf(slot)), $"spare {slot} outlived the engine");
                Assert.False(Directory.Exists($"/sys/class/net/{Slot(data, slot).HostInterface}"), $"spare {slot}'s veth outlived the engine");
            }

            Leftovers.AssertNone(data);

            // What a killed engine leaves (a whole spare, veth and all) is removed by the next start, which makes its own.
            var leftover = Slot(data, 9000);
            var leftoverFile = Path.Combine(data, "netns", SpareNetworks.FilePrefix + "9000");
            await SandboxNetwork.CreateNamespaceAsync(leftoverFile, leftover, CancellationToken.None);
            await SandboxNetwork.ConfigureAsync(leftoverFile, leftover, null, [], CancellationToken.None, connect: false);
            engine = await StartAsync(data);
            Assert.False(File.Exists(leftoverFile), "a killed engine's spare survived the start");
            Assert.False(Directory.Exists($"/sys/class/net/{leftover.HostInterface}"), "a killed engine's spare veth survived the start");
            await Eventually.TrueAsync(() => engine.Sandboxes.SpareNetworks.Count == Target, "the new engine's spares to be made");
            await engine.DisposeAsync();
            Leftovers.AssertNone(data);
        }
        finally
        {
            await engine.DisposeAsync();
            Leftovers.Remove(data);
        }
    }

    private static Task<EngineServer> StartAsync(string data) => EngineFixture.StartEngineAsync(data, o =>
    {
        o.VolumeMb = 512;
        o.BlankDisks = 0;
        o.SpareNetworks = Target;
    });

    private static NetworkSlot Slot(string data, int index) => new(index, NetworkSlot.PrefixFor(data));

    private static string Operstate(NetworkSlot slot) => File.ReadAllText($"/sys/class/net/{slot.HostInterface}/operstate").Trim();

    /// <summary>The namespace's iptables rules without comments and counters.</summary>
    private static async Task<string> RulesAsync(string namespaceFile)
    {
        var save = await CommandRunner.RunCheckedAsync("nsenter", [$"--net={namespaceFile}", "iptables-save"]);
        return string.Join('\n', save.Stdout.Split('\n').Where(l => !l.StartsWith('#')).Select(l => Counters().Replace(l, "")));
    }

    /// <summary>Rules rendered for <paramref name="from"/>, with its addresses and veth name replaced by <paramref name="to"/>'s.</summary>
    private static string ForSlot(string rules, NetworkSlot from, NetworkSlot to)
    {
        foreach (var (a, b) in new[] { (from.HostAddress.ToString(), to.HostAddress.ToString()), (from.SandboxAddress.ToString(), to.SandboxAddress.ToString()), (from.HostInterface, to.HostInterface) })
        {
            rules = Regex.Replace(rules, Regex.Escape(a) + @"(?![0-9])", b);
        }

        return rules;
    }

    [GeneratedRegex(@"\[\d+:\d+\]")]
    private static partial Regex Counters();
}
