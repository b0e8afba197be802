using Spectre.Console;
using Spectre.Console.Rendering;

namespace Hands.Cli;

/// <summary>Tables on a terminal; tab-separated lines when the output is piped, so ids are never wrapped for scripts.</summary>
internal static class Output
{
    public static void Table(Table table)
    {
        if (!Console.IsOutputRedirected)
        {
            AnsiConsole.Write(table);
            return;
        }

        Console.WriteLine(string.Join('\t', table.Columns.Select(c => Plain(c.Header))));
        foreach (var row in table.Rows)
        {
            Console.WriteLine(string.Join('\t', row.Select(Plain)));
        }
    }

    private static string Plain(IRenderable cell) => cell switch
    {
        Markup m => Strip(m),
        Text t => Strip(t),
        _ => cell.ToString() ?? "",
    };

    private static string Strip(IRenderable renderable)
    {
        var segments = renderable.GetSegments(AnsiConsole.Console);
        return string.Concat(segments.Where(s => !s.IsLineBreak).Select(s => s.Text)).Trim();
    }
}
