using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Hands.Worker.Tools;

/// <summary>
/// The <c>grep</c> tool: a regex over the files under <c>path</c> (or the workdir). With <c>rg</c> on PATH (outside
/// the workdir, so the agent cannot plant one) it runs <c>rg --no-config -n --no-heading -e PATTERN -- PATH</c> and
/// answers rg's output as is; otherwise a built-in walker answers <c>FILE:LINE:TEXT</c> lines, skipping <c>.git</c>,
/// <c>node_modules</c>, symlinks, binary files (a NUL) and lines over 2,000 characters. Output is capped at 100 KiB,
/// the walker at 60 s. Texts match the official TypeScript worker.
/// </summary>
public sealed class GrepTool(ToolContext context) : IWorkerTool
{
    public const int OutputLimit = 102_400;
    private static readonly TimeSpan WalkTimeout = TimeSpan.FromSeconds(60);

    public string Name => "grep";
    public bool IsBuiltIn => true;

    /// <summary>The TypeScript worker's description of <c>grep</c>, word for word (its tool span's <c>gen_ai.tool.description</c>).</summary>
    public string Description => "Search file contents for a regex. Uses ripgrep if available, otherwise a built-in walker.";

    /// <summary>Set false to force the built-in walker (tests).</summary>
    public bool UseRipgrep { get; init; } = true;

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var pattern = ToolInput.String(input, "grep", "pattern");
        if (string.IsNullOrEmpty(pattern))
        {
            throw new ToolError("grep: pattern is required");
        }

        var p = ToolInput.String(input, "grep", "path");
        var searchPath = string.IsNullOrEmpty(p) ? context.Workdir : context.Paths.Resolve(p);
        var rg = UseRipgrep ? FindExecutable("rg", context.Paths.Root, context.Environment) : null;
        return ToolOutput.Text(rg is not null
            ? await RunRipgrepAsync(rg, pattern, searchPath, cancellationToken)
            : await Task.Run(() => Walk(pattern, searchPath, cancellationToken), cancellationToken));
    }

    internal static string? FindExecutable(string name, string notInside, IReadOnlyDictionary<string, string> environment)
    {
        var path = environment.TryGetValue("PATH", out var v) ? v : Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            if (!dir.StartsWith('/'))
            {
                continue;
            }

            var candidate = Path.Combine(dir, name);
            if (UnixFilesSafe.KindOf(candidate) != UnixFiles.Kind.Regular
                || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
            {
                continue;
            }

            var real = PathPolicy.Canonicalize(candidate);
            if (!PathPolicy.IsWithin(notInside, real))
            {
                return real;
            }
        }

        return null;
    }

    private async Task<string> RunRipgrepAsync(string rg, string pattern, string searchPath, CancellationToken ct)
    {
        var psi = ToolProcess.StartInfo(rg, ["--no-config", "-n", "--no-heading", "-e", pattern, "--", searchPath], context.Environment);

        Process process;
        try
        {
            process = Process.Start(psi)!;
            Hosting.OomScore.PreferAsVictim(process.Id);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new ToolError("grep: rg failed: " + ex.Message);
        }

        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync(ct);
            var output = new StringBuilder();
            var truncated = false;
            var chunk = new char[8192];
            try
            {
                int n;
                while ((n = await process.StandardOutput.ReadAsync(chunk.AsMemory(), ct)) > 0)
                {
                    output.Append(chunk, 0, n);
                    if (output.Length > OutputLimit)
                    {
                        output.Length = OutputLimit;
                        truncated = true;
                        process.Kill(entireProcessTree: true);
                        break;
                    }
                }

                await process.WaitForExitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new ToolError("grep: aborted");
            }

            if (truncated)
            {
                return output + $"\n[output truncated at {OutputLimit} bytes]";
            }

            return process.ExitCode switch
            {
                0 => output.ToString(),
                1 => "no matches",
                var code => throw new ToolError("grep: rg failed: " + (await stderr is { Length: > 0 } err ? err : $"exit {code}")),
            };
        }
    }

    private static string Walk(string pattern, string root, CancellationToken ct)
    {
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));
        }
        catch (ArgumentException ex)
        {
            throw new ToolError("grep: invalid regex: " + ex.Message);
        }

        var hits = new List<string>();
        var budget = OutputLimit;
        var deadline = Stopwatch.StartNew();
        var timedOut = false;
        var entries = 0;

        bool Push(string line)
        {
            budget -= line.Length + 1;
            if (budget < 0)
            {
                hits.Add($"[output truncated at {OutputLimit} bytes]");
                return false;
            }

            hits.Add(line);
            return true;
        }

        bool GrepFile(string file)
        {
            try
            {
                using var reader = new StreamReader(file, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false);
                var number = 0;
                string? line;
                while ((line = reader.ReadLine()) is not null)
                {
                    number++;
                    if (line.Contains('\0', StringComparison.Ordinal))
                    {
                        return true; // binary file: stop reading it
                    }

                    if (line.Length > 2000)
                    {
                        continue;
                    }

                    try
                    {
                        if (regex.IsMatch(line) && !Push($"{file}:{number}:{line}"))
                        {
                            return false;
                        }
                    }
                    catch (RegexMatchTimeoutException)
                    {
                        // a pathological pattern on one line: skip the line
                    }
                }
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // unreadable: skip
            }

            return true;
        }

        bool WalkDirectory(string dir, int depth)
        {
            if (depth > 40)
            {
                return true;
            }

            IEnumerable<FileSystemInfo> children;
            try
            {
                children = new DirectoryInfo(dir).EnumerateFileSystemInfos().OrderBy(c => c.Name, StringComparer.Ordinal).ToList();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return true;
            }

            foreach (var child in children)
            {
                ct.ThrowIfCancellationRequested();
                if (deadline.Elapsed > WalkTimeout)
                {
                    timedOut = true;
                    return false;
                }

                if (++entries > GlobTool.WalkLimit || child.LinkTarget is not null || child.Name is ".git" or "node_modules")
                {
                    if (entries > GlobTool.WalkLimit)
                    {
                        return false;
                    }

                    continue;
                }

                var keepGoing = child is DirectoryInfo
                    ? WalkDirectory(child.FullName, depth + 1)
                    : UnixFilesSafe.KindOf(child.FullName) != UnixFiles.Kind.Regular || GrepFile(child.FullName);
                if (!keepGoing)
                {
                    return false;
                }
            }

            return true;
        }

        try
        {
            if (UnixFilesSafe.KindOf(root) == UnixFiles.Kind.Regular)
            {
                GrepFile(root);
            }
            else
            {
                WalkDirectory(root, 0);
            }
        }
        catch (OperationCanceledException)
        {
            throw new ToolError("grep: aborted");
        }

        if (timedOut)
        {
            if (hits.Count == 0)
            {
                throw new ToolError("grep: timed out after 60s");
            }

            hits.Add("[the search was cut short after 60000 ms]");
        }

        return hits.Count == 0 ? "no matches" : string.Join('\n', hits);
    }
}
