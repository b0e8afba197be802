using System.Text;
using System.Text.RegularExpressions;

namespace Hands.Worker.Tools;

/// <summary>
/// Doublestar glob patterns as the tools' reference describes them: <c>*</c> (within a path segment), <c>**</c> (any
/// depth), <c>?</c>, <c>[abc]</c> / <c>[!abc]</c>, and <c>{a,b}</c>, matched against paths relative to the root.
/// </summary>
internal static class GlobPattern
{
    public static Regex ToRegex(string pattern)
    {
        var sb = new StringBuilder("^");
        var braces = 0;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '*' when i + 1 < pattern.Length && pattern[i + 1] == '*':
                    var slashAfter = i + 2 < pattern.Length && pattern[i + 2] == '/';
                    var atSegmentStart = i == 0 || pattern[i - 1] == '/';
                    if (atSegmentStart && slashAfter)
                    {
                        sb.Append("(?:[^/]+/)*"); // "**/" = zero or more directories
                        i += 2;
                    }
                    else
                    {
                        sb.Append(".*");
                        i += 1;
                    }

                    break;
                case '*':
                    sb.Append("[^/]*");
                    break;
                case '?':
                    sb.Append("[^/]");
                    break;
                case '[':
                    var close = pattern.IndexOf(']', i + 1);
                    if (close < 0)
                    {
                        sb.Append(@"\[");
                        break;
                    }

                    var body = pattern[(i + 1)..close];
                    if (body.StartsWith('!'))
                    {
                        body = "^" + body[1..];
                    }

                    sb.Append('[').Append(body.Replace(@"\", @"\\", StringComparison.Ordinal)).Append(']');
                    i = close;
                    break;
                case '{':
                    braces++;
                    sb.Append("(?:");
                    break;
                case '}' when braces > 0:
                    braces--;
                    sb.Append(')');
                    break;
                case ',' when braces > 0:
                    sb.Append('|');
                    break;
                default:
                    sb.Append(Regex.Escape(c.ToString()));
                    break;
            }
        }

        return new Regex(sb.Append('$').ToString(), RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
    }
}
