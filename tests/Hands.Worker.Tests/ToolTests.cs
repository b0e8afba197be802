using System.Text.Json;
using Hands.Worker.Tools;

namespace Hands.Worker.Tests;

/// <summary>The six tools in process, with the official TypeScript worker's texts.</summary>
public sealed class ToolTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("hands-tools-");
    private readonly ToolContext _context;

    public ToolTests() => _context = new ToolContext(_dir.FullName, maxFileBytes: 1024);

    public void Dispose() => _dir.Delete(recursive: true);

    private static JsonElement Input(string json) => JsonDocument.Parse(json).RootElement.Clone();

    private static async Task<(string Text, bool IsError)> Run(IWorkerTool tool, string json)
    {
        try
        {
            var output = await tool.ExecuteAsync(Input(json), CancellationToken.None);
            return (output.Content[0].Text!, output.IsError);
        }
        catch (ToolError ex)
        {
            return (ex.Message, true);
        }
    }

    [Fact]
    public async Task Bash_keeps_state_reports_exits_and_restarts()
    {
        using var bash = new BashTool(_context);
        Assert.Equal(("hi", false), await Run(bash, """{"command":"cd /tmp && export X=hi && echo $X"}"""));
        Assert.Equal(("/tmp hi", false), await Run(bash, """{"command":"echo $(pwd) $X"}"""));
        Assert.Equal(("exit 1", true), await Run(bash, """{"command":"false"}"""));
        Assert.Equal(("out", true), await Run(bash, """{"command":"echo out; exit_code=2; (exit 2)"}"""));
        Assert.Equal(("bash: command is required", true), await Run(bash, "{}"));
        Assert.Equal(("bash session restarted", false), await Run(bash, """{"restart":true}"""));
        Assert.Equal((_dir.FullName, false), await Run(bash, """{"command":"pwd"}"""));
        Assert.Equal(("bash: bash session terminated", true), await Run(bash, """{"command":"exit 3"}"""));
        Assert.Equal(("fresh", false), await Run(bash, """{"command":"echo fresh"}"""));
        Assert.Equal(("red", false), await Run(bash, """{"command":"printf '\\033[31mred\\033[0m\\n\\n'"}"""));
        Assert.Equal(("err\nout", false), await Run(bash, """{"command":"echo err >&2; echo out"}"""));
        Assert.Equal(("", false), await Run(bash, """{"command":"read line; echo -n \"$line\""}""")); // stdin is /dev/null
        Assert.Equal(("started", false), await Run(bash, """{"command":"sleep 30 & echo started"}""")); // a background job does not hold the call
    }

    [Fact]
    public async Task Bash_times_out_discards_the_shell_and_tail_keeps_floods()
    {
        using var bash = new BashTool(_context);
        Assert.Equal(("bash: bash command timed out after 200ms", true), await Run(bash, """{"command":"export Y=1; sleep 5","timeout_ms":200}"""));
        Assert.Equal(("", false), await Run(bash, """{"command":"echo -n $Y"}""")); // a fresh shell
        var (flood, isError) = await Run(bash, """{"command":"head -c 300000 /dev/zero | tr '\\0' 'x'; echo; echo last"}""");
        Assert.False(isError);
        Assert.StartsWith("[output truncated]\n", flood, StringComparison.Ordinal);
        Assert.EndsWith("x\nlast", flood, StringComparison.Ordinal);
        Assert.True(flood.Length <= BashSession.OutputLimit + "[output truncated]\n".Length);
    }

    [Fact]
    public async Task Bash_never_sees_anthropic_variables_and_a_cancelled_call_aborts()
    {
        Environment.SetEnvironmentVariable("ANTHROPIC_ENVIRONMENT_KEY", "sk-ant-oat01-SECRET");
        Environment.SetEnvironmentVariable("anthropic_work_secret", "lowercase-secret");
        try
        {
            using var bash = new BashTool(new ToolContext(_dir.FullName));
            var (env, _) = await Run(bash, """{"command":"env"}""");
            Assert.DoesNotContain("SECRET", env, StringComparison.Ordinal);
            Assert.DoesNotContain("lowercase-secret", env, StringComparison.Ordinal);
            Assert.Contains("TERM=dumb", env, StringComparison.Ordinal);
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
            var error = await Assert.ThrowsAsync<ToolError>(() => bash.ExecuteAsync(Input("""{"command":"sleep 10"}"""), cts.Token));
            Assert.Equal("bash: This operation was aborted", error.Message);
        }
        finally
        {
            Environment.SetEnvironmentVariable("ANTHROPIC_ENVIRONMENT_KEY", null);
            Environment.SetEnvironmentVariable("anthropic_work_secret", null);
        }
    }

    [Fact]
    public void Tool_commands_never_get_the_trace_exporters_headers_or_the_workers_own_trace_context()
    {
        Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_HEADERS", "api-key=collector-secret");
        Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "api-key=collector-secret");
        Environment.SetEnvironmentVariable("TRACEPARENT", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        Environment.SetEnvironmentVariable("OTEL_SERVICE_NAME", "kept");
        try
        {
            var env = ToolContext.ScrubbedEnvironment();
            Assert.DoesNotContain("OTEL_EXPORTER_OTLP_HEADERS", env.Keys);
            Assert.DoesNotContain("OTEL_EXPORTER_OTLP_TRACES_HEADERS", env.Keys);
            Assert.DoesNotContain("TRACEPARENT", env.Keys);
            Assert.Equal("kept", env["OTEL_SERVICE_NAME"]); // the rest of OTEL_* is the commands' own business
        }
        finally
        {
            Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_HEADERS", null);
            Environment.SetEnvironmentVariable("OTEL_EXPORTER_OTLP_TRACES_HEADERS", null);
            Environment.SetEnvironmentVariable("TRACEPARENT", null);
            Environment.SetEnvironmentVariable("OTEL_SERVICE_NAME", null);
        }
    }

    [Fact]
    public async Task Read_whole_ranges_caps_and_errors()
    {
        File.WriteAllText(Path.Combine(_dir.FullName, "f.txt"), "l1\nl2\nl3\n");
        var read = new ReadTool(_context);
        Assert.Equal(("l1\nl2\nl3\n", false), await Run(read, """{"file_path":"f.txt"}"""));
        Assert.Equal(("l2\nl3", false), await Run(read, """{"file_path":"f.txt","view_range":[2,3]}"""));
        Assert.Equal(("l2\nl3\n", false), await Run(read, """{"file_path":"f.txt","view_range":[2,-1]}"""));
        Assert.Equal(("read: view_range must be [start_line, end_line]", true), await Run(read, """{"file_path":"f.txt","view_range":[1]}"""));
        Assert.Equal(("read: nope.txt: no such file or directory", true), await Run(read, """{"file_path":"nope.txt"}"""));
        Assert.Equal(("read: file_path is required", true), await Run(read, """{"file_path":""}"""));
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "d"));
        Assert.Equal(("read: d is not a regular file", true), await Run(read, """{"file_path":"d"}"""));
        Assert.Equal(("read: f.txt/x: not a directory", true), await Run(read, """{"file_path":"f.txt/x"}"""));

        File.WriteAllText(Path.Combine(_dir.FullName, "big.txt"), string.Concat(Enumerable.Range(1, 300).Select(i => $"line {i}\n")));
        Assert.Equal(("read: big.txt is 2592 bytes, exceeds 1024-byte limit. Use the view_range parameter to read specific line ranges, e.g. view_range: [1, 500].", true),
            await Run(read, """{"file_path":"big.txt"}"""));
        Assert.Equal(("line 299\nline 300", false), await Run(read, """{"file_path":"big.txt","view_range":[299,300]}"""));
        Assert.Equal(("read: view_range [1, 300] of big.txt exceeds 1024-byte limit. Narrow the view_range to read a smaller portion.", true),
            await Run(read, """{"file_path":"big.txt","view_range":[1,300]}"""));
        Assert.Equal(("read: view_range must be a list of integers", true), await Run(read, """{"file_path":"f.txt","view_range":"1-2"}"""));
    }

    [Fact]
    public async Task Paths_are_confined_after_resolving_symlinks()
    {
        var read = new ReadTool(_context);
        File.CreateSymbolicLink(Path.Combine(_dir.FullName, "etc-link"), "/etc");
        File.CreateSymbolicLink(Path.Combine(_dir.FullName, "dangling"), "/nonexistent/file");
        Assert.Equal(("path \"../x\" is outside the session's working directory", true), await Run(read, """{"file_path":"../x"}"""));
        Assert.Equal(("path \"/etc/hostname\" is outside the session's working directory", true), await Run(read, """{"file_path":"/etc/hostname"}"""));
        Assert.Equal(("path \"etc-link/hostname\" is outside the session's working directory", true), await Run(read, """{"file_path":"etc-link/hostname"}"""));
        var write = new WriteTool(_context);
        Assert.Equal(("path \"dangling\" is outside the session's working directory", true), await Run(write, """{"file_path":"dangling","content":"x"}"""));
        Assert.False(File.Exists("/nonexistent/file"));

        var unrestricted = new ReadTool(new ToolContext(_dir.FullName, unrestrictedPaths: true));
        Assert.False((await Run(unrestricted, """{"file_path":"/etc/hostname"}""")).IsError);
    }

    [Fact]
    public async Task Write_and_edit_follow_the_reference_texts()
    {
        var write = new WriteTool(_context);
        Assert.Equal(("wrote 6 bytes to new/dir/f.txt", false), await Run(write, """{"file_path":"new/dir/f.txt","content":"héllo"}"""));
        Assert.Equal("héllo", File.ReadAllText(Path.Combine(_dir.FullName, "new/dir/f.txt")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_dir.FullName, "new/dir/f.txt")));
        Assert.Equal(("wrote 0 bytes to e.txt", false), await Run(write, """{"file_path":"e.txt"}"""));
        Assert.Equal(("write: new: is a directory", true), await Run(write, """{"file_path":"new","content":"x"}"""));
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir.FullName, "new/dir"), ".tmp-*"));

        File.WriteAllText(Path.Combine(_dir.FullName, "e.txt"), "a b a $& b");
        var edit = new EditTool(_context);
        Assert.Equal(("edit: old_string is required", true), await Run(edit, """{"file_path":"e.txt","old_string":"","new_string":"x"}"""));
        Assert.Equal(("edit: old_string not found in e.txt", true), await Run(edit, """{"file_path":"e.txt","old_string":"zzz","new_string":"x"}"""));
        Assert.Equal(("edit: old_string appears 2 times in e.txt (must be unique)", true), await Run(edit, """{"file_path":"e.txt","old_string":"a","new_string":"x"}"""));
        Assert.Equal(("edited e.txt (1 replacement(s))", false), await Run(edit, """{"file_path":"e.txt","old_string":"$&","new_string":"$1"}"""));
        Assert.Equal(("edited e.txt (2 replacement(s))", false), await Run(edit, """{"file_path":"e.txt","old_string":"b","new_string":"B","replace_all":true}"""));
        Assert.Equal("a B a $1 B", File.ReadAllText(Path.Combine(_dir.FullName, "e.txt")));
        Assert.Equal(("edit: nope: no such file or directory", true), await Run(edit, """{"file_path":"nope","old_string":"a","new_string":"b"}"""));
        Assert.Equal(("edit: old_string must be a string", true), await Run(edit, """{"file_path":"e.txt","old_string":5,"new_string":"b"}"""));
    }

    [Fact]
    public async Task Glob_lists_newest_first_and_refuses_escapes()
    {
        var glob = new GlobTool(_context);
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "src/deep"));
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "node_modules/pkg"));
        File.WriteAllText(Path.Combine(_dir.FullName, "src/old.cs"), "");
        File.SetLastWriteTimeUtc(Path.Combine(_dir.FullName, "src/old.cs"), DateTime.UtcNow.AddHours(-1));
        File.WriteAllText(Path.Combine(_dir.FullName, "src/deep/new.cs"), "");
        File.WriteAllText(Path.Combine(_dir.FullName, "node_modules/pkg/x.cs"), "");
        File.WriteAllText(Path.Combine(_dir.FullName, "readme.md"), "");
        var expected = $"{_dir.FullName}/src/deep/new.cs\n{_dir.FullName}/src/old.cs";
        Assert.Equal((expected, false), await Run(glob, """{"pattern":"**/*.cs"}"""));
        Assert.Equal(($"{_dir.FullName}/src/old.cs", false), await Run(glob, """{"pattern":"*.{cs,txt}","path":"src"}"""));
        Assert.Equal(("no matches", false), await Run(glob, """{"pattern":"*.rs"}"""));
        Assert.Equal(("glob: absolute pattern not permitted; pass a relative pattern (and optionally path)", true), await Run(glob, """{"pattern":"/etc/*"}"""));
        Assert.Equal(("glob: \"..\" is not permitted in the pattern", true), await Run(glob, """{"pattern":"{..,src}/*"}"""));
        Assert.Equal(("glob: pattern is required", true), await Run(glob, """{"pattern":""}"""));
    }

    [Fact]
    public async Task Glob_reads_patterns_as_node_22s_fs_glob()
    {
        var glob = new GlobTool(_context);
        string Make(string relative, int age)
        {
            var path = Path.Combine(_dir.FullName, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            File.WriteAllText(path, "x");
            File.SetLastWriteTimeUtc(path, new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddMinutes(-age));
            return path;
        }

        var top = Make("top.txt", 1);
        var dot = Make(".dot.txt", 2);
        var hidden = Make(".hidden/h.txt", 3);
        var inner = Make("sub/.inner.txt", 4);
        var deep = Make("sub/deep/d.txt", 5);
        var target = Make("target/t.txt", 6);
        File.CreateSymbolicLink(Path.Combine(_dir.FullName, "linkdir"), Path.Combine(_dir.FullName, "target"));
        File.CreateSymbolicLink(Path.Combine(_dir.FullName, "linkfile.txt"), top);

        // Wildcards skip names that start with a dot, and "**" does not enter such directories; a leading dot in the pattern matches them.
        Assert.Equal(($"{top}\n{deep}\n{target}", false), await Run(glob, """{"pattern":"**/*.txt"}"""));
        Assert.Equal(($"{dot}", false), await Run(glob, """{"pattern":".*"}"""));
        Assert.Equal(($"{dot}\n{inner}", false), await Run(glob, """{"pattern":"**/.*"}"""));
        Assert.Equal(($"{hidden}", false), await Run(glob, """{"pattern":".hidden/**"}"""));
        // A linked directory is entered only where the pattern names it; a link is never a result itself.
        Assert.Equal(($"{_dir.FullName}/linkdir/t.txt", false), await Run(glob, """{"pattern":"linkdir/*"}"""));
        Assert.Equal(("no matches", false), await Run(glob, """{"pattern":"l*/*"}"""));
        Assert.Equal(("no matches", false), await Run(glob, """{"pattern":"linkfile.txt"}"""));
        // Empty and "." segments are dropped, a backslash separates, braces expand (nested, and an empty alternative).
        Assert.Equal(($"{top}", false), await Run(glob, """{"pattern":"./top.txt"}"""));
        Assert.Equal(($"{deep}", false), await Run(glob, """{"pattern":"sub//deep/./d.txt"}"""));
        Assert.Equal(($"{deep}", false), await Run(glob, """{"pattern":"sub\\deep\\*.txt"}"""));
        Assert.Equal(($"{top}\n{deep}", false), await Run(glob, """{"pattern":"{,sub/{deep,x}/}{top,d}.txt"}"""));
        Assert.Equal(($"{top}", false), await Run(glob, """{"pattern":"[^a-s]o?.txt"}"""));
        Assert.Equal(("no matches", false), await Run(glob, """{"pattern":"\\*"}"""));

        for (var i = 0; i < GlobTool.ResultLimit + 5; i++)
        {
            Make($"many/m{i}.txt", 100 + i);
        }

        var listed = (await Run(glob, """{"pattern":"many/*"}""")).Text.Split('\n');
        Assert.Equal(GlobTool.ResultLimit, listed.Length);
        Assert.Equal($"{_dir.FullName}/many/m0.txt", listed[0]);
        Assert.Equal($"{_dir.FullName}/many/m{GlobTool.ResultLimit - 1}.txt", listed[^1]);
    }

    [Fact]
    public async Task Grep_with_the_walker_and_with_ripgrep()
    {
        Directory.CreateDirectory(Path.Combine(_dir.FullName, "a/.git"));
        File.WriteAllText(Path.Combine(_dir.FullName, "a/x.txt"), "alpha\nbeta\ngamma\n");
        File.WriteAllText(Path.Combine(_dir.FullName, "a/.git/y.txt"), "gamma\n");
        File.WriteAllBytes(Path.Combine(_dir.FullName, "a/bin.dat"), [0x67, 0x61, 0x6d, 0x6d, 0x61, 0, 1]);
        var walker = new GrepTool(_context) { UseRipgrep = false };
        Assert.Equal(($"{_dir.FullName}/a/x.txt:3:gamma", false), await Run(walker, """{"pattern":"gam+a"}"""));
        Assert.Equal(("no matches", false), await Run(walker, """{"pattern":"zeta"}"""));
        Assert.StartsWith("grep: invalid regex: ", (await Run(walker, """{"pattern":"("}""")).Text, StringComparison.Ordinal);
        Assert.Equal(("grep: pattern is required", true), await Run(walker, """{"pattern":""}"""));

        if (GrepTool.FindExecutable("rg", _dir.FullName, ToolContext.ScrubbedEnvironment()) is null)
        {
            throw new InvalidOperationException("ripgrep is not installed; scripts/test.sh installs it");
        }

        var rg = new GrepTool(_context);
        Assert.Equal(("3:gamma\n", false), await Run(rg, """{"pattern":"gam+a","path":"a/x.txt"}""")); // rg names no file when given one
        Assert.Equal(($"{_dir.FullName}/a/x.txt:3:gamma\n", false), await Run(rg, """{"pattern":"gam+a","path":"a"}"""));
        Assert.Equal(("no matches", false), await Run(rg, """{"pattern":"zeta"}"""));
        Assert.StartsWith("grep: rg failed: ", (await Run(rg, """{"pattern":"("}""")).Text, StringComparison.Ordinal);
    }
}
