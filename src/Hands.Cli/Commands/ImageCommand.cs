using System.CommandLine;
using Hands.Sandboxes.Images;

namespace Hands.Cli.Commands;

/// <summary>
/// <c>hands image build FILE --name NAME</c>: builds the file with <see cref="ImageBuilder"/> (a builder sandbox, a
/// filesystem snapshot, a registration, the way Tensorlake builds images) against the local engine or the cloud.
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
            var imageName = parse.GetValue(name)!;
            if (!File.Exists(path))
            {
                throw new CliException($"'{path}' does not exist.");
            }

            ImageBuildFile spec;
            try
            {
                spec = ImageBuildFile.Parse(await File.ReadAllTextAsync(path, ct), path);
            }
            catch (FormatException ex)
            {
                throw new CliException(ex.Message, ex);
            }

            using var client = SandboxClientFactory.Create();
            try
            {
                var result = await new ImageBuilder(client).BuildAsync(spec, Path.GetDirectoryName(Path.GetFullPath(path))!, imageName, new StepPrinter(), ct);
                if (!result.Registered)
                {
                    throw new CliException($"step 'run {result.FailedStep!.Argument}' failed with exit code {result.ExitCode}; nothing was registered.");
                }
            }
            catch (FileNotFoundException ex)
            {
                throw new CliException(ex.Message, ex);
            }

            Console.WriteLine(imageName);
            return 0;
        });
        return new Command("image", "Sandbox images") { build };
    }

    /// <summary>Prints progress to stderr as it comes, in order (<see cref="Progress{T}"/> would post it to the thread pool).</summary>
    private sealed class StepPrinter : IProgress<ImageBuildProgress>
    {
        public void Report(ImageBuildProgress value) =>
            Console.Error.WriteLine(value.IsOutput ? "    " + value.Text : $"[{value.Step}/{value.Steps}] {value.Text}");
    }
}
