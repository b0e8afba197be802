using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Hands.Engine.Sandboxes;

/// <summary>Ids and names: both end up as DNS labels in ingress host names, so both are lowercase slugs.</summary>
internal static partial class SandboxIds
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";

    /// <summary>A fresh id: a letter, then 19 lowercase letters or digits (so it can never be mistaken for a PID or port).</summary>
    public static string NewId(char first = 's') =>
        first + RandomNumberGenerator.GetString(Alphabet, 19);

    /// <summary>Decision (the reference found no rule): a DNS label, lowercase letters, digits and '-', 1–63 long, no leading or trailing '-'.</summary>
    public static bool IsValidName(string name) => NameRule().IsMatch(name);

    public const string NameRuleText = "a name is 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit (it becomes a host name label)";

    [GeneratedRegex("^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    private static partial Regex NameRule();
}
