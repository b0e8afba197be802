using Hands.Sandboxes.Client;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Images;

/// <summary>
/// Builds an image the way Tensorlake does: runs an <see cref="ImageBuildFile"/>'s steps in a builder sandbox, takes a
/// filesystem snapshot and registers it under a name. Works against the local engine or the cloud; the builder sandbox
/// is deleted however the build ends.
/// </summary>
public sealed class ImageBuilder(TensorlakeClient client)
{
    private static readonly TimeSpan SnapshotTimeout = TimeSpan.FromMinutes(10);

    /// <summary>
    /// Builds <paramref name="spec"/> (its <c>copy</c> sources relative to <paramref name="baseDirectory"/>) and registers
    /// it as <paramref name="name"/>. A missing <c>copy</c> source is a <see cref="FileNotFoundException"/>.
    /// </summary>
    public async Task<ImageBuildResult> BuildAsync(ImageBuildFile spec, string baseDirectory, string name, IProgress<ImageBuildProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var steps = spec.Steps.Count + 3;
        progress?.Report(new ImageBuildProgress(1, steps, $"starting a builder sandbox from {spec.From ?? "the default image"}", false));
        var builder = await client.CreateAsync(new CreateSandboxRequest { Image = spec.From, TimeoutSecs = 0 }, cancellationToken).ConfigureAwait(false);
        try
        {
            var proxy = client.Proxy(await client.GetAsync(builder.CanonicalId, cancellationToken).ConfigureAwait(false));
            var env = new Dictionary<string, string>();
            var workdir = "/";
            var number = 1;
            foreach (var step in spec.Steps)
            {
                number++;
                progress?.Report(new ImageBuildProgress(number, steps, $"{step.Verb} {step.Argument}{(step.Value is null ? "" : " " + step.Value)}", false));
                switch (step.Verb)
                {
                    case "env":
                        env[step.Argument] = step.Value!;
                        break;
                    case "workdir":
                        workdir = step.Argument.StartsWith('/') ? step.Argument : Path.Combine(workdir, step.Argument);
                        await proxy.RunAsync(new RunProcessRequest { Command = "mkdir", Args = ["-p", workdir] }, cancellationToken).ConfigureAwait(false);
                        break;
                    case "copy":
                        await CopyAsync(proxy, Path.Combine(baseDirectory, step.Argument), step.Value!.StartsWith('/') ? step.Value : Path.Combine(workdir, step.Value), cancellationToken).ConfigureAwait(false);
                        break;
                    default:
                        var exit = await RunAsync(proxy, step.Argument, env, workdir, line => progress?.Report(new ImageBuildProgress(number, steps, line, true)), cancellationToken).ConfigureAwait(false);
                        if (exit != 0)
                        {
                            return new ImageBuildResult(step, exit);
                        }

                        break;
                }
            }

            progress?.Report(new ImageBuildProgress(steps - 1, steps, "taking a filesystem snapshot", false));
            var snapshot = await client.SnapshotAsync(builder.CanonicalId, SnapshotType.Filesystem, cancellationToken).ConfigureAwait(false);
            var ready = await client.WaitForSnapshotAsync(snapshot.SnapshotId, SnapshotTimeout, TimeSpan.FromSeconds(1), cancellationToken).ConfigureAwait(false);
            progress?.Report(new ImageBuildProgress(steps, steps, $"registering image '{name}'", false));
            await client.RegisterImageAsync(name, ready.CanonicalId, spec.ToDockerfile(), cancellationToken).ConfigureAwait(false);
            return new ImageBuildResult(null, 0);
        }
        finally
        {
            await client.DeleteAsync(builder.CanonicalId, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>Runs one <c>run</c> step through bash, handing each output line on; its exit code (128 + signal when killed).</summary>
    private static async Task<int> RunAsync(SandboxProxyClient proxy, string command, Dictionary<string, string> env, string workdir, Action<string> output, CancellationToken cancellationToken)
    {
        var exit = 1;
        await foreach (var frame in proxy.RunStreamingAsync(new RunProcessRequest { Command = "bash", Args = ["-c", command], Env = env, WorkingDir = workdir }, cancellationToken).ConfigureAwait(false))
        {
            if (frame.IsOutput)
            {
                output(frame.Line!);
            }
            else if (frame.IsExit)
            {
                exit = frame.ExitCode ?? 128 + frame.Signal!.Value;
            }
        }

        return exit;
    }

    private static async Task CopyAsync(SandboxProxyClient proxy, string local, string destination, CancellationToken cancellationToken)
    {
        if (File.Exists(local))
        {
            await proxy.WriteFileAsync(destination, await File.ReadAllBytesAsync(local, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
            return;
        }

        if (!Directory.Exists(local))
        {
            throw new FileNotFoundException($"copy: '{local}' does not exist.", local);
        }

        foreach (var fileName in Directory.EnumerateFiles(local, "*", SearchOption.AllDirectories))
        {
            var target = destination.TrimEnd('/') + "/" + Path.GetRelativePath(local, fileName).Replace('\\', '/');
            await proxy.WriteFileAsync(target, await File.ReadAllBytesAsync(fileName, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
        }
    }
}
