namespace Hands.Sandboxes.Images;

/// <summary>
/// A declarative image file, one step per line (like Tensorlake's <c>Image</c> builder): <c>from IMAGE</c> (first, optional),
/// <c>run COMMAND</c>, <c>copy LOCAL DEST</c>, <c>workdir DIR</c>, <c>env KEY=VALUE</c>; <c>#</c> starts a comment.
/// </summary>
public sealed record ImageBuildFile(string? From, IReadOnlyList<ImageStep> Steps)
{
    /// <summary>Parses <paramref name="text"/>; a bad line is a <see cref="FormatException"/> naming <paramref name="fileName"/> and the line.</summary>
    public static ImageBuildFile Parse(string text, string fileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        string? from = null;
        var steps = new List<ImageStep>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
            {
                continue;
            }

            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var verb = (space < 0 ? line : line[..space]).ToLowerInvariant();
            var rest = space < 0 ? "" : line[(space + 1)..].Trim();
            if (rest.Length == 0)
            {
                throw new FormatException($"{fileName}:{number}: '{verb}' needs an argument.");
            }

            switch (verb)
            {
                case "from" when steps.Count == 0 && from is null:
                    from = rest;
                    break;
                case "run" or "workdir":
                    steps.Add(new ImageStep(verb, rest, null));
                    break;
                case "env" when rest.IndexOf('=', StringComparison.Ordinal) > 0:
                    steps.Add(new ImageStep(verb, rest[..rest.IndexOf('=', StringComparison.Ordinal)], rest[(rest.IndexOf('=', StringComparison.Ordinal) + 1)..]));
                    break;
                case "copy" when rest.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [var local, var dest]:
                    steps.Add(new ImageStep(verb, local, dest));
                    break;
                default:
                    throw new FormatException($"{fileName}:{number}: '{line}' is not a step; use from IMAGE (first), run CMD, copy LOCAL DEST, workdir DIR or env KEY=VALUE.");
            }
        }

        return new ImageBuildFile(from, steps);
    }

    /// <summary>The steps as a Dockerfile, which is how Tensorlake registers an image (ENV and WORKDIR are kept as image settings).</summary>
    public string ToDockerfile() => string.Join('\n', new[] { $"FROM {From ?? "tensorlake/ubuntu-minimal"}" }.Concat(Steps.Select(s => s.Verb switch
    {
        "run" => $"RUN {s.Argument}",
        "workdir" => $"WORKDIR {s.Argument}",
        "env" => $"ENV {s.Argument}={s.Value}",
        _ => $"COPY {s.Argument} {s.Value}",
    })));
}

/// <summary>One step: <see cref="Argument"/> is the command, directory, key or local path; <see cref="Value"/> the env value or copy destination.</summary>
public sealed record ImageStep(string Verb, string Argument, string? Value);
