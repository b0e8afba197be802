using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Hands.SandboxDaemon.Processes;

/// <summary>
/// Turns a start request into a <see cref="ProcessStartInfo"/>: argv without a shell, the request's env laid over the
/// daemon's own (the image's base environment), the working directory, and the user.
/// Decision (CONFLICT in the reference): without <c>user</c> a process runs as root, the image's user here.
/// </summary>
internal static class ProcessLauncher
{
    /// <summary>Variables of the daemon's own runtime that processes must not inherit.</summary>
    private static readonly string[] PrivatePrefixes = ["ASPNETCORE_", "HANDS_SANDBOXD_"];

    /// <summary>The image's WORKDIR (set by the engine), else <c>/</c>.</summary>
    private static string DefaultWorkingDirectory => Environment.GetEnvironmentVariable("HANDS_SANDBOXD_WORKDIR") is { Length: > 0 } dir ? dir : "/";

    /// <summary>What to start; <see cref="ScoreRaised"/> when it raises its own OOM score before it runs the command (<see cref="OomScore"/>).</summary>
    public sealed record Launch(ProcessStartInfo StartInfo, bool StdinPipe, bool CaptureStdout, bool CaptureStderr, bool ScoreRaised);

    public static Launch Prepare(StartRequest request, bool oneShot)
    {
        if (string.IsNullOrEmpty(request.Command))
        {
            throw new ProcessLaunchException("'command' is required: the program to run (argv[0]); use \"bash\" with args [\"-c\", \"...\"] for a shell line") { IsBadRequest = true };
        }

        var stdinPipe = !oneShot && Mode(request.StdinMode, "stdin_mode", "closed", "pipe") == "pipe";
        var captureStdout = oneShot || Mode(request.StdoutMode, "stdout_mode", "capture", "discard") == "capture";
        var captureStderr = oneShot || Mode(request.StderrMode, "stderr_mode", "capture", "discard") == "capture";

        var info = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = string.IsNullOrEmpty(request.WorkingDir) ? DefaultWorkingDirectory : request.WorkingDir,
        };
        if (!Directory.Exists(info.WorkingDirectory))
        {
            throw new ProcessLaunchException($"working_dir '{info.WorkingDirectory}' does not exist in the sandbox") { IsBadRequest = true };
        }

        foreach (var key in info.Environment.Keys.Where(k => PrivatePrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal))).ToList())
        {
            info.Environment.Remove(key);
        }

        foreach (var (key, value) in request.Env ?? [])
        {
            info.Environment[key] = value;
        }

        if (oneShot)
        {
            info.Environment["TENSORLAKE_SANDBOX_PROCESS_MODE"] = "one-shot";
        }

        if (ResolveUser(request.User) is { } user)
        {
            // setpriv (util-linux, in every Debian image) switches uid/gid and drops supplementary groups, then execs.
            info.FileName = "setpriv";
            info.ArgumentList.Add($"--reuid={user.Uid.ToString(CultureInfo.InvariantCulture)}");
            info.ArgumentList.Add($"--regid={user.Gid.ToString(CultureInfo.InvariantCulture)}");
            info.ArgumentList.Add("--clear-groups");
            info.ArgumentList.Add("--");
            info.ArgumentList.Add(request.Command);
        }
        else
        {
            info.FileName = request.Command;
        }

        foreach (var arg in request.Args ?? [])
        {
            info.ArgumentList.Add(arg);
        }

        // The shell that raises the OOM score would turn a missing program into its own exit 127: refuse it here, as
        // a failed spawn, the way a direct start fails.
        var path = info.Environment.TryGetValue("PATH", out var searched) && searched is not null ? searched : DefaultPath;
        EnsureRunnable(info.FileName, path, info.WorkingDirectory);
        if (info.FileName == "setpriv")
        {
            EnsureRunnable(request.Command, path, info.WorkingDirectory);
        }

        return new Launch(info, stdinPipe, captureStdout, captureStderr, OomScore.StartRaised(info));
    }

    /// <summary>What <c>sh</c> searches when the environment has no PATH.</summary>
    private const string DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>Finds <paramref name="program"/> as <c>execvp</c> does (a name with a slash is a path, else each PATH entry); throws when there is no executable file.</summary>
    private static void EnsureRunnable(string program, string path, string workingDirectory)
    {
        var candidates = program.Contains('/', StringComparison.Ordinal)
            ? [Path.GetFullPath(program, workingDirectory)]
            : path.Split(':').Select(dir => Path.Combine(dir.Length == 0 ? workingDirectory : Path.GetFullPath(dir, workingDirectory), program));
        const UnixFileMode anyExecute = UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
        var files = candidates.Where(File.Exists).ToList();
        if (files.Count == 0)
        {
            throw new ProcessLaunchException($"cannot start '{program}': no such file{(program.Contains('/', StringComparison.Ordinal) ? "" : " in PATH (" + path + ")")}");
        }

        if (!files.Any(f => (File.GetUnixFileMode(f) & anyExecute) != 0))
        {
            throw new ProcessLaunchException($"cannot start '{program}': {files[0]} is not executable");
        }
    }

    private static string Mode(string? value, string field, string @default, string other)
    {
        if (value is null || value == @default)
        {
            return @default;
        }

        return value == other ? other : throw new ProcessLaunchException($"{field} must be '{@default}' or '{other}', not '{value}'") { IsBadRequest = true };
    }

    private readonly record struct UserIds(int Uid, int Gid);

    /// <summary>A user name, a UID, <c>"uid:gid"</c>, or an object <c>{"name"}</c> / <c>{"uid", "gid"}</c>; null means root.</summary>
    private static UserIds? ResolveUser(JsonElement? user)
    {
        if (user is not { } value || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind == JsonValueKind.Object)
        {
            if (value.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String)
            {
                return ByName(name.GetString()!);
            }

            if (value.TryGetProperty("uid", out var uid) && uid.TryGetInt32(out var u))
            {
                var g = value.TryGetProperty("gid", out var gid) && gid.TryGetInt32(out var parsedGid) ? parsedGid : u;
                return new UserIds(u, g);
            }

            throw new ProcessLaunchException("user must be a name, a uid, \"uid:gid\", {\"name\": ...} or {\"uid\": ..., \"gid\": ...}") { IsBadRequest = true };
        }

        var text = value.ValueKind == JsonValueKind.Number ? value.GetRawText() : value.GetString() ?? "";
        var parts = text.Split(':');
        if (parts.Length <= 2 && parts.All(p => p.Length > 0 && p.All(char.IsAsciiDigit)))
        {
            var u = int.Parse(parts[0], CultureInfo.InvariantCulture);
            return new UserIds(u, parts.Length == 2 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : u);
        }

        return ByName(text);
    }

    private static UserIds ByName(string name)
    {
        if (name == "root")
        {
            return new UserIds(0, 0);
        }

        foreach (var line in File.Exists("/etc/passwd") ? File.ReadLines("/etc/passwd") : [])
        {
            var fields = line.Split(':');
            if (fields.Length >= 4 && fields[0] == name
                && int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out var uid)
                && int.TryParse(fields[3], NumberStyles.None, CultureInfo.InvariantCulture, out var gid))
            {
                return new UserIds(uid, gid);
            }
        }

        throw new ProcessLaunchException($"user '{name}' does not exist in the sandbox's /etc/passwd; pass a uid or \"uid:gid\" instead") { IsBadRequest = true };
    }
}
