using System.CommandLine;
using Hands.Sandboxes.Models;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands image build FILE --name NAME</c>: runs the file's steps in a builder sandbox, takes a filesystem snapshot
/// and registers it under the name, the way Tensorlake builds images; works against the local engine or the cloud.
/// </summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "Image file: from/run/copy/workdir/env steps, one per line" };
        var name = new Option<string>("--name") { Description = "Name to launch it by (image: NAME)", Required = true };
        var build = new Command("build", "Build an image from a declarative file and register it") { file, name };
        build.SetAction(async (parse, ct) =>
        {
            var path = parse.GetValue(file)!;
            if (!File.Exists(path))
            {
                throw new CliException($"'{path}' does not exist.");
            }

            var spec = ImageBuildFile.Parse(await File.ReadAllTextAsync(path, ct), path);
            var baseDirectory = Path.GetDirectoryName(Path.GetFullPath(path))!;
            using var client = SandboxClientFactory.Create();
            await Console.Error.WriteLineAsync($"[1/{spec.Steps.Count + 3}] starting a builder sandbox from {spec.From ?? "the default image"}");
            var builder = await client.CreateAsync(new CreateSandboxRequest { Image = spec.From, TimeoutSecs = 0 }, ct);
            try
            {
                var proxy = client.Proxy(await client.GetAsync(builder.CanonicalId, ct));
                var env = new Dictionary<string, string>();
                var workdir = "/";
                var step = 1;
                foreach (var s in spec.Steps)
                {
                    step++;
                    await Console.Error.WriteLineAsync($"[{step}/{spec.Steps.Count + 3}] {s.Verb} {s.Argument}{(s.Value is null ? "" : " " + s.Value)}");
                    switch (s.Verb)
                    {
                        case "env":
                            env[s.Argument] = s.Value!;
                            break;
                        case "workdir":
                            workdir = s.Argument.StartsWith('/') ? s.Argument : Path.Combine(workdir, s.Argument);
                            await proxy.RunAsync(new RunProcessRequest { Command = "mkdir", Args = ["-p", workdir] }, ct);
                            break;
                        case "copy":
                            await CopyAsync(proxy, Path.Combine(baseDirectory, s.Argument), s.Value!.StartsWith('/') ? s.Value : Path.Combine(workdir, s.Value), ct);
                            break;
                        default:
                            var exit = 1;
                            await foreach (var frame in proxy.RunStreamingAsync(new RunProcessRequest { Command = "bash", Args = ["-c", s.Argument], Env = env, WorkingDir = workdir }, ct))
                            {
                                if (frame.IsOutput)
                                {
                                    await Console.Error.WriteLineAsync("    " + frame.Line);
                                }
                                else if (frame.IsExit)
                                {
                                    exit = frame.ExitCode ?? 128 + frame.Signal!.Value;
                                }
                            }

                            if (exit != 0)
                            {
                                throw new CliException($"step 'run {s.Argument}' failed with exit code {exit}; nothing was registered.");
                            }

                            break;
                    }
                }

                await Console.Error.WriteLineAsync($"[{spec.Steps.Count + 2}/{spec.Steps.Count + 3}] taking a filesystem snapshot");
                var snapshot = await client.SnapshotAsync(builder.CanonicalId, SnapshotType.Filesystem, ct);
                var ready = await client.WaitForSnapshotAsync(snapshot.SnapshotId, TimeSpan.FromMinutes(10), TimeSpan.FromSeconds(1), ct);
                await Console.Error.WriteLineAsync($"[{spec.Steps.Count + 3}/{spec.Steps.Count + 3}] registering image '{parse.GetValue(name)}'");
                await client.RegisterImageAsync(parse.GetValue(name)!, ready.CanonicalId, spec.ToDockerfile(), ct);
                Console.WriteLine(parse.GetValue(name));
            }
            finally
            {
                await client.DeleteAsync(builder.CanonicalId, CancellationToken.None);
            }

            return 0;
        });
        var command = new Command("image", "Sandbox images") { build };
        return command;
    }

    private static async Task CopyAsync(Hands.Sandboxes.Client.SandboxProxyClient proxy, string local, string destination, CancellationToken ct)
    {
        if (File.Exists(local))
        {
            await proxy.WriteFileAsync(destination, await File.ReadAllBytesAsync(local, ct), ct);
            return;
        }

        if (!Directory.Exists(local))
        {
            throw new CliException($"copy: '{local}' does not exist.");
        }

        foreach (var fileName in Directory.EnumerateFiles(local, "*", SearchOption.AllDirectories))
        {
            await proxy.WriteFileAsync(destination.TrimEnd('/') + "/" + Path.GetRelativePath(local, fileName).Replace('\\', '/'), await File.ReadAllBytesAsync(fileName, ct), ct);
        }
    }
}
