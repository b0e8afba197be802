using System.Globalization;
using System.Text;
using System.Text.Json;
using Hands.Forking;

namespace Hands.Worker.Forking;

/// <summary>An exploration's result as compact JSON for an agent: the winner, then each branch with its output's tail.</summary>
internal static class ForkReport
{
    private const int OutputTail = 2000;

    public static string ToJson(ForkExploreResult result)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("winner", result.Winner?.Name);
            w.WriteString("snapshot_type", result.SnapshotType);
            w.WriteBoolean("parent_resumed", result.ParentResumed);
            if (result.Adopted is { } adopted)
            {
                w.WriteStartObject("adopted");
                w.WriteString("directory", adopted.Directory);
                WriteStrings(w, "copied", adopted.Copied);
                WriteStrings(w, "deleted", adopted.Deleted);
                w.WriteEndObject();
            }

            w.WriteStartArray("branches");
            foreach (var b in result.Branches)
            {
                w.WriteStartObject();
                w.WriteString("name", b.Name);
                w.WriteString("state", b.State.ToString().ToLowerInvariant());
                if (b.ExitCode is { } exit)
                {
                    w.WriteNumber("exit_code", exit);
                }

                if (b.Elapsed is { } elapsed)
                {
                    w.WriteNumber("elapsed_ms", Math.Round(elapsed.TotalMilliseconds));
                }

                w.WriteNumber("score", b.Score);
                w.WriteString("stdout", Tail(b.Stdout));
                w.WriteString("stderr", Tail(b.Stderr));
                if (b.Error is not null)
                {
                    w.WriteString("error", b.Error);
                }

                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>One tab-separated line per branch, then the winner: for a person at a shell.</summary>
    public static string ToText(ForkExploreResult result)
    {
        var text = new StringBuilder();
        foreach (var b in result.Branches)
        {
            var elapsed = b.Elapsed is { } e ? e.TotalSeconds.ToString("0.00", CultureInfo.InvariantCulture) + " s" : "-";
            text.Append(CultureInfo.InvariantCulture, $"{b.Name}\t{b.State.Label()}\texit {b.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "-"}\t{elapsed}\t{b.Error ?? ""}\n");
        }

        text.Append(result.Winner is { } w ? $"winner: {w.Name}\n" : "no branch passed\n");
        if (result.Adopted is { } adopted)
        {
            text.Append(CultureInfo.InvariantCulture, $"adopted into {adopted.Directory}: {adopted.Copied.Count} copied, {adopted.Deleted.Count} removed\n");
        }

        return text.ToString();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var value in values)
        {
            w.WriteStringValue(value);
        }

        w.WriteEndArray();
    }

    private static string Tail(string text) => text.Length <= OutputTail ? text : text[^OutputTail..];
}
