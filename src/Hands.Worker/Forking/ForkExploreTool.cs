using System.Text.Json;
using Hands.Forking;
using Hands.Sandboxes.Models;
using Hands.Worker.Tools;

namespace Hands.Worker.Forking;

/// <summary>
/// The custom tool <c>fork_explore</c>: forks this sandbox from one checkpoint, runs one command per branch, and
/// answers with every branch's outcome and the winner (optionally adopting its files). Served when the orchestrator
/// gave the worker a fork key; the agent declares it as <see cref="ForkExploreToolDefinition"/> says. The key stays in the worker.
/// </summary>
internal sealed class ForkExploreTool(ForkAccess access, ToolContext context) : IWorkerTool
{
    public string Name => ForkExploreToolDefinition.Name;

    public bool IsBuiltIn => false;

    public string Description => ForkExploreToolDefinition.Description;

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var (branches, options) = Parse(input, context.Workdir);
        options.ChildNamePrefix = access.ChildNamePrefix;
        using var client = access.CreateClient();
        try
        {
            var result = await new ForkExplorer(client).ExploreAsync(access.SandboxId, branches, options, cancellationToken).ConfigureAwait(false);
            return ToolOutput.Text(ForkReport.ToJson(result));
        }
        catch (Exception ex) when (ex is ForkExploreException or ArgumentException or Hands.Sandboxes.Client.TensorlakeException)
        {
            throw new ToolError("fork_explore: " + ex.Message);
        }
    }

    /// <summary>The branch timeout when the input names none.</summary>
    public static readonly TimeSpan DefaultBranchTimeout = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long one call may take in the worst case: every wave of branches (N / parallel) running to its timeout,
    /// plus 3 minutes for the checkpoint, the boots, adoption and clean-up. The session runner's outer timeout uses it.
    /// </summary>
    public static TimeSpan Budget(JsonElement? input)
    {
        var branches = 1;
        var parallel = int.MaxValue;
        var timeout = DefaultBranchTimeout;
        if (input is { ValueKind: JsonValueKind.Object } i)
        {
            if (i.TryGetProperty("branches", out var list) && list.ValueKind == JsonValueKind.Array)
            {
                branches = Math.Max(1, list.GetArrayLength());
            }

            if (i.TryGetProperty("parallel", out var p) && p.TryGetInt32(out var k) && k > 0)
            {
                parallel = k;
            }

            if (i.TryGetProperty("timeout_seconds", out var t) && t.TryGetDouble(out var seconds) && seconds > 0)
            {
                timeout = TimeSpan.FromSeconds(Math.Min(seconds, 86400));
            }
        }

        var waves = (branches + Math.Min(parallel, branches) - 1) / Math.Min(parallel, branches);
        return timeout * waves + TimeSpan.FromMinutes(3);
    }

    /// <summary>Reads the tool input; branch commands run in, and adoption covers, <c>workdir</c> (default: the worker's).</summary>
    internal static (IReadOnlyList<ForkBranch> Branches, ForkExploreOptions Options) Parse(JsonElement input, string defaultWorkdir)
    {
        if (input.ValueKind != JsonValueKind.Object || !input.TryGetProperty("branches", out var list) || list.ValueKind != JsonValueKind.Array)
        {
            throw new ToolError("fork_explore: 'branches' must be an array of {name, command}");
        }

        var workdir = input.TryGetProperty("workdir", out var w) && w.ValueKind == JsonValueKind.String ? w.GetString()! : defaultWorkdir;
        var branches = new List<ForkBranch>();
        foreach (var item in list.EnumerateArray())
        {
            var name = item.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : "";
            var command = item.TryGetProperty("command", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
            var env = new Dictionary<string, string>(StringComparer.Ordinal);
            if (item.TryGetProperty("env", out var e) && e.ValueKind == JsonValueKind.Object)
            {
                foreach (var pair in e.EnumerateObject())
                {
                    env[pair.Name] = pair.Value.ValueKind == JsonValueKind.String ? pair.Value.GetString()! : pair.Value.GetRawText();
                }
            }

            branches.Add(new ForkBranch(name, command) { Environment = env, WorkingDirectory = workdir });
        }

        var options = new ForkExploreOptions
        {
            SnapshotType = input.TryGetProperty("snapshot_type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : SnapshotType.Filesystem,
            MaxParallelism = input.TryGetProperty("parallel", out var p) && p.TryGetInt32(out var k) ? k : null,
            BranchTimeout = input.TryGetProperty("timeout_seconds", out var s) && s.TryGetDouble(out var seconds) && seconds > 0 ? TimeSpan.FromSeconds(Math.Min(seconds, 86400)) : DefaultBranchTimeout,
            Adopt = input.TryGetProperty("adopt", out var a) && a.ValueKind == JsonValueKind.True,
            AdoptDirectory = workdir,
        };
        return (branches, options);
    }
}
