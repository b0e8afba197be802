using System.Text;
using System.Text.RegularExpressions;

namespace Hands.Worker.Tools;

/// <summary>
/// Glob patterns as Node 22's <c>fs.glob</c> reads them (what the official TypeScript worker's <c>glob</c> uses): braces
/// <c>{a,b}</c> expanded first (nested too); then each expansion split into path segments on <c>/</c> and on <c>\</c>
/// (Node's glob takes no escapes: a backslash separates, as on Windows), with empty and <c>.</c> segments dropped. A
/// segment is <c>**</c> (any number of directories), a literal name, or a name pattern of <c>*</c>, <c>?</c> and
/// <c>[...]</c> (<c>[!...]</c> and <c>[^...]</c> negate); a name pattern matches a name that starts with <c>.</c> only
/// when the pattern itself starts with <c>.</c>.
/// </summary>
internal sealed class GlobPattern
{
    /// <summary>Most expansions one pattern's braces may produce (the walk runs once per expansion).</summary>
    public const int MaxExpansions = 256;

    private GlobPattern(IReadOnlyList<Segment> segments, bool rooted)
    {
        Segments = segments;
        Rooted = rooted;
    }

    /// <summary>One path segment: <see cref="IsGlobstar"/>, else a literal <see cref="Text"/> when <see cref="Regex"/> is null.</summary>
    public sealed record Segment(string Text, Regex? Regex)
    {
        public bool IsGlobstar => Text == "**";

        /// <summary>Whether a directory entry called <paramref name="name"/> matches (not for <see cref="IsGlobstar"/>).</summary>
        public bool Matches(string name) => Regex is null
            ? name == Text
            : (Text.StartsWith('.') || !name.StartsWith('.')) && Regex.IsMatch(name);
    }

    /// <summary>The segments, none empty or <c>.</c>.</summary>
    public IReadOnlyList<Segment> Segments { get; }

    /// <summary>
    /// True when the expansion began with a separator (<c>\x</c> names <c>/x</c> for Node): it can match nothing under a
    /// search root, so it is not walked.
    /// </summary>
    public bool Rooted { get; }

    /// <summary>The pattern's expansions, each ready to walk, without duplicates.</summary>
    public static IReadOnlyList<GlobPattern> Parse(string pattern)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var parsed = new List<GlobPattern>();
        foreach (var expansion in ExpandBraces(pattern))
        {
            var rooted = expansion.StartsWith('/') || expansion.StartsWith('\\');
            var texts = expansion.Split('/', '\\').Where(s => s.Length > 0 && s != ".").ToList();
            if (texts.Count == 0 || !seen.Add((rooted ? "/" : "") + string.Join('/', texts)))
            {
                continue;
            }

            // "**/**" walks as "**": consecutive globstars match the same directories.
            var segments = new List<Segment>();
            foreach (var text in texts)
            {
                if (text == "**" && segments.Count > 0 && segments[^1].IsGlobstar)
                {
                    continue;
                }

                segments.Add(new Segment(text, text == "**" ? null : NamePattern(text)));
            }

            parsed.Add(new GlobPattern(segments, rooted));
        }

        return parsed;
    }

    /// <summary>Expands the first brace group with a top-level comma, then the rest, up to <see cref="MaxExpansions"/>.</summary>
    internal static IReadOnlyList<string> ExpandBraces(string pattern)
    {
        var done = new List<string>();
        var pending = new Queue<string>([pattern]);
        while (pending.Count > 0 && done.Count + pending.Count <= MaxExpansions)
        {
            var current = pending.Dequeue();
            if (FindGroup(current) is not { } group)
            {
                done.Add(current);
                continue;
            }

            var prefix = current[..group.Open];
            var suffix = current[(group.Close + 1)..];
            foreach (var alternative in group.Alternatives)
            {
                pending.Enqueue(prefix + alternative + suffix);
            }
        }

        done.AddRange(pending);
        return done;
    }

    private static (int Open, int Close, List<string> Alternatives)? FindGroup(string text)
    {
        for (var open = text.IndexOf('{', StringComparison.Ordinal); open >= 0; open = text.IndexOf('{', open + 1))
        {
            var depth = 0;
            var start = open + 1;
            var alternatives = new List<string>();
            for (var i = open; i < text.Length; i++)
            {
                if (text[i] == '{')
                {
                    depth++;
                }
                else if (text[i] == '}' && --depth == 0)
                {
                    if (alternatives.Count == 0)
                    {
                        break; // "{a}" has no comma: it stays literal, as in bash and minimatch
                    }

                    alternatives.Add(text[start..i]);
                    return (open, i, alternatives);
                }
                else if (text[i] == ',' && depth == 1)
                {
                    alternatives.Add(text[start..i]);
                    start = i + 1;
                }
            }
        }

        return null;
    }

    /// <summary>The name pattern's regex, or null when the segment has no <c>*</c>, <c>?</c> or <c>[...]</c> (a literal name).</summary>
    private static Regex? NamePattern(string segment)
    {
        var sb = new StringBuilder("^");
        var magic = false;
        for (var i = 0; i < segment.Length; i++)
        {
            var c = segment[i];
            switch (c)
            {
                case '*':
                    magic = true;
                    sb.Append(".*");
                    break;
                case '?':
                    magic = true;
                    sb.Append('.');
                    break;
                case '[' when ClassEnd(segment, i) is var close and > 0:
                    magic = true;
                    var body = segment[(i + 1)..close];
                    var negated = body[0] is '!' or '^';
                    sb.Append(negated ? "[^" : "[").Append(EscapeClass(negated ? body[1..] : body)).Append(']');
                    i = close;
                    break;
                default:
                    sb.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return magic ? new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | RegexOptions.Singleline) : null;
    }

    /// <summary>Where the class opened at <paramref name="open"/> closes; -1 when it never does or is empty (then <c>[</c> is literal).</summary>
    private static int ClassEnd(string segment, int open)
    {
        var first = open + 1;
        if (first < segment.Length && segment[first] is '!' or '^')
        {
            first++;
        }

        // A ']' right after the opening (or its negation) is a member, as in POSIX brackets.
        var close = segment.IndexOf(']', first < segment.Length && segment[first] == ']' ? first + 1 : first);
        return close > open + 1 ? close : -1;
    }

    private static string EscapeClass(string body)
    {
        var sb = new StringBuilder();
        foreach (var c in body)
        {
            sb.Append(c is '\\' or '[' or ']' or '^' ? "\\" + c : c.ToString());
        }

        return sb.ToString();
    }
}
