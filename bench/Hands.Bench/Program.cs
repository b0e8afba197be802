using System.Globalization;
using Hands.Bench;

// Usage: dotnet run -c Release --project bench/Hands.Bench [-- control-plane] [--iterations N]
var iterations = 200;
var suites = new List<string>();
for (var i = 0; i < args.Length; i++)
{
    if (args[i] == "--iterations" && i + 1 < args.Length)
    {
        iterations = Math.Clamp(int.Parse(args[++i], CultureInfo.InvariantCulture), 10, 5000);
    }
    else
    {
        suites.Add(args[i]);
    }
}

if (suites.Count == 0)
{
    suites.Add("control-plane");
}

var output = new List<string>
{
    $"# Hands benchmarks — {DateTimeOffset.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} cores, .NET {Environment.Version}",
    "",
};
foreach (var suite in suites)
{
    switch (suite)
    {
        case "control-plane":
            Console.Error.WriteLine($"control-plane: {iterations} iterations per measurement...");
            output.Add("## Control plane (loopback HTTP, SQLite WAL synchronous=FULL)");
            output.Add("");
            output.Add("| operation | n | p50 ms | p95 ms | note |");
            output.Add("|---|---|---|---|---|");
            output.AddRange(await ControlPlaneBench.RunAsync(iterations));
            output.Add("");
            break;
        default:
            Console.Error.WriteLine($"unknown suite '{suite}'; suites: control-plane");
            return 2;
    }
}

foreach (var line in output)
{
    Console.WriteLine(line);
}

var dir = Path.Combine("bench", "results");
Directory.CreateDirectory(dir);
var file = Path.Combine(dir, $"bench-{DateTimeOffset.UtcNow:yyyyMMdd-HHmmss}.md");
await File.WriteAllLinesAsync(file, output);
Console.Error.WriteLine($"written to {file}");
return 0;
