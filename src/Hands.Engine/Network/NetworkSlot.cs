using System.Net;

namespace Hands.Engine.Network;

/// <summary>
/// A sandbox's /30 out of 10.200.0.0/16: slot N owns 10.200.0.0 + 4N; the host end (the sandbox's gateway) is .1 and
/// the sandbox is .2. Slot 0 is never used, so 16383 sandboxes fit.
/// </summary>
public readonly record struct NetworkSlot(int Index, string InterfacePrefix = "hands")
{
    public const int MaxIndex = 16383;

    /// <summary>The range every slot's /30 is in.</summary>
    public const string Range = "10.200.0.0/16";

    private int Base => Index * 4;

    public IPAddress HostAddress => new([10, 200, (byte)(Base >> 8), (byte)((Base & 0xFF) + 1)]);

    public IPAddress SandboxAddress => new([10, 200, (byte)(Base >> 8), (byte)((Base & 0xFF) + 2)]);

    /// <summary>The host-side veth's name (interface names are limited to 15 characters); the prefix tells engines apart.</summary>
    public string HostInterface => $"{InterfacePrefix}{Index}";

    /// <summary>A prefix of 5 characters unique to an engine's data directory, so one engine never touches another's veths.</summary>
    public static string PrefixFor(string dataDirectory) =>
        "h" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(dataDirectory))))[..3] + "s";

    /// <summary>
    /// The first free slot after <paramref name="last"/> (the one handed out before), wrapping round: an address freed
    /// by a deleted sandbox is the last to be handed out again, so what the host still holds for it (the ingress's idle
    /// pooled connections, up to 30 s; conntrack and neighbour entries) never meets a new sandbox at that address.
    /// </summary>
    public static NetworkSlot Allocate(IEnumerable<int> used, int last = 0)
    {
        var taken = used.ToHashSet();
        for (var step = 1; step <= MaxIndex; step++)
        {
            var i = (last + step - 1) % MaxIndex + 1;
            if (!taken.Contains(i))
            {
                return new NetworkSlot(i);
            }
        }

        throw new InvalidOperationException("every /30 in 10.200.0.0/16 is in use");
    }
}
