using System.Diagnostics;
using System.Text;

namespace Hands.Worker.Tools;

/// <summary>Starts the helper processes of the tools (bash, rg, custom tool commands) with exactly the given environment.</summary>
internal static class ToolProcess
{
    public static ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments, IReadOnlyDictionary<string, string> environment,
        string? workingDirectory = null, bool redirectInput = false)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory ?? "",
            RedirectStandardInput = redirectInput,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = new UTF8Encoding(false),
            StandardErrorEncoding = new UTF8Encoding(false),
        };
        foreach (var argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        // Replace, not merge: the worker's own variables (credentials among them) must not leak into tool processes.
        psi.Environment.Clear();
        foreach (var (key, value) in environment)
        {
            psi.Environment[key] = value;
        }

        return psi;
    }
}
