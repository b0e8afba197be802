using System.Collections.Concurrent;
using System.Reflection;

namespace Hands.ControlPlane.Scripted;

/// <summary>
/// Finds scenarios by name: first <c>NAME.json</c> in the <c>--scenarios</c> directory (re-read when it changes),
/// then the built-in ones shipped inside this assembly.
/// </summary>
public sealed class ScenarioLibrary
{
    private const string ResourcePrefix = "Hands.ControlPlane.Scenarios.";
    private readonly string? _directory;
    private readonly ConcurrentDictionary<string, (DateTime Stamp, Scenario Scenario)> _cache = new(StringComparer.Ordinal);

    public ScenarioLibrary(string? directory) => _directory = directory;

    /// <summary>Names of the built-in scenarios.</summary>
    public static IReadOnlyList<string> BuiltInNames { get; } = typeof(ScenarioLibrary).Assembly.GetManifestResourceNames()
        .Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal) && n.EndsWith(".json", StringComparison.Ordinal))
        .Select(n => n[ResourcePrefix.Length..^".json".Length])
        .Order(StringComparer.Ordinal)
        .ToList();

    /// <summary>Returns the scenario, or throws <see cref="ScenarioException"/> saying where it looked.</summary>
    public Scenario Get(string name)
    {
        if (name.Length == 0 || name.Contains('/', StringComparison.Ordinal) || name.Contains('\\', StringComparison.Ordinal) || name.Contains("..", StringComparison.Ordinal))
        {
            throw new ScenarioException($"'{name}' is not a valid scenario name");
        }

        if (_directory is not null)
        {
            var path = Path.Combine(_directory, name + ".json");
            if (File.Exists(path))
            {
                var stamp = File.GetLastWriteTimeUtc(path);
                if (_cache.TryGetValue("file:" + name, out var cached) && cached.Stamp == stamp)
                {
                    return cached.Scenario;
                }

                var scenario = Scenario.Parse(name, File.ReadAllText(path));
                _cache["file:" + name] = (stamp, scenario);
                return scenario;
            }
        }

        return _cache.GetOrAdd("builtin:" + name, _ =>
        {
            using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(ResourcePrefix + name + ".json")
                ?? throw new ScenarioException(
                    $"no scenario named '{name}'" + (_directory is null ? "" : $" in {_directory}") +
                    $"; built-in scenarios: {string.Join(", ", BuiltInNames)}");
            using var reader = new StreamReader(stream);
            return (DateTime.MinValue, Scenario.Parse(name, reader.ReadToEnd()));
        }).Scenario;
    }
}
