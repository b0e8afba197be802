using System.Globalization;
using System.Text;
using Hands.ControlPlane.Infrastructure;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.MemoryStores;

/// <summary>The rules a memory path and its content must follow, with the hosted service's 400 messages.</summary>
internal static class MemoryPaths
{
    public const int MaxSegments = 20;

    /// <summary>Throws a 400 naming <paramref name="field"/> unless <paramref name="path"/> is a legal memory path.</summary>
    public static void Validate(string field, string path)
    {
        if (!path.StartsWith('/'))
        {
            throw ApiException.Invalid($"{field}: must start with '/' (e.g. /notes/todo.md)");
        }

        if (Encoding.UTF8.GetByteCount(path) > MemoryValues.MaxPathBytes)
        {
            throw ApiException.Invalid($"{field}: must be at most {MemoryValues.MaxPathBytes} bytes of UTF-8");
        }

        var segments = path[1..].Split('/');
        if (segments.Length > MaxSegments)
        {
            throw ApiException.Invalid($"{field}: must have 1 to {MaxSegments} segments, not {segments.Length}");
        }

        foreach (var segment in segments)
        {
            if (segment.Length == 0 || segment is "." or "..")
            {
                throw ApiException.Invalid($"{field}: a segment cannot be empty, '.' or '..' ('{path}')");
            }
        }

        foreach (var rune in path.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                || category == UnicodeCategory.Surrogate)
            {
                throw ApiException.Invalid($"{field}: cannot contain control or format characters, or U+2028/U+2029 (U+{rune.Value:X4})");
            }
        }

        if (!path.IsNormalized(NormalizationForm.FormC))
        {
            throw ApiException.Invalid($"{field}: must be in Unicode Normalization Form C");
        }
    }

    /// <summary>A listing's <c>path_prefix</c>: starts and ends with '/', whole segments; "/" is the whole store.</summary>
    public static string ValidatePrefix(string? prefix)
    {
        if (string.IsNullOrEmpty(prefix))
        {
            return "/";
        }

        if (!prefix.StartsWith('/') || !prefix.EndsWith('/'))
        {
            throw ApiException.Invalid("path_prefix: must start and end with '/' (e.g. /notes/)");
        }

        if (prefix.Length > 1)
        {
            Validate("path_prefix", prefix[..^1]);
        }

        return prefix;
    }

    /// <summary>The 400 for content over the size cap.</summary>
    public static void ValidateContent(string field, string content)
    {
        var bytes = Encoding.UTF8.GetByteCount(content);
        if (bytes > MemoryValues.MaxContentBytes)
        {
            throw ApiException.Invalid($"{field}: must be at most {MemoryValues.MaxContentBytes} bytes of UTF-8, not {bytes}");
        }
    }

    /// <summary>True when one path is the other's ancestor (<c>/notes</c> and <c>/notes/todo.md</c>).</summary>
    public static bool Overlap(string a, string b) =>
        a.StartsWith(b + "/", StringComparison.Ordinal) || b.StartsWith(a + "/", StringComparison.Ordinal);

    /// <summary>A directory name derived from a store name: lower case, <c>[a-z0-9._-]</c>, other runs as one '-'.</summary>
    public static string Slug(string name)
    {
        var sb = new StringBuilder(name.Length);
        foreach (var c in name.ToLowerInvariant())
        {
            var keep = c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-';
            if (keep)
            {
                sb.Append(c);
            }
            else if (sb.Length > 0 && sb[^1] != '-')
            {
                sb.Append('-');
            }
        }

        var slug = sb.ToString().Trim('-', '.');
        return slug.Length == 0 ? "memory" : slug.Length > 64 ? slug[..64].TrimEnd('-', '.') : slug;
    }
}
