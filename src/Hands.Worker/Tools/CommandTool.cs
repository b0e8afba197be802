using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Worker.Tools;

/// <summary>
/// A custom tool backed by a command: the call's input JSON goes to the command's stdin, its stdout is the result,
/// and a non-zero exit is an error (stdout, else stderr, else <c>exit N</c>). The command runs in the workdir with the
/// scrubbed environment (no <c>ANTHROPIC_*</c>), is killed at its timeout, and its output is capped at 100 KiB.
/// </summary>
public sealed class CommandTool(CustomToolDefinition definition, ToolContext context) : IWorkerTool
{
    private const int OutputLimit = 100 * 1024;

    public string Name => definition.Name;
    public bool IsBuiltIn => false;
    public string? Description => string.IsNullOrEmpty(definition.Description) ? null : definition.Description;
    public CustomToolDefinition Definition => definition;

    public async Task<ToolOutput> ExecuteAsync(JsonElement input, CancellationToken cancellationToken)
    {
        var psi = ToolProcess.StartInfo(definition.Command[0], definition.Command.Skip(1), context.Environment, context.Workdir, redirectInput: true);

        Process process;
        try
        {
            process = Process.Start(psi)!;
            Hosting.OomScore.PreferAsVictim(process.Id);
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new ToolError($"{Name}: cannot run {definition.Command[0]}: {ex.Message}");
        }

        context.HelperProcessStarted?.Invoke(process.Id);

        using (process)
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
        {
            timeout.CancelAfter(TimeSpan.FromMilliseconds(definition.TimeoutMs ?? 120_000));
            var stdout = ReadCappedAsync(process.StandardOutput, timeout.Token);
            var stderr = ReadCappedAsync(process.StandardError, timeout.Token);
            try
            {
                await process.StandardInput.WriteAsync(input.GetRawText());
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // the command did not read its input; that is its choice
            }

            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new ToolError(cancellationToken.IsCancellationRequested
                    ? $"{Name}: aborted"
                    : $"{Name}: timed out after {definition.TimeoutMs ?? 120_000}ms");
            }

            var output = (await stdout).TrimEnd('\n');
            if (process.ExitCode == 0)
            {
                return ToolOutput.Text(output);
            }

            var error = (await stderr).TrimEnd('\n');
            return ToolOutput.Text(output.Length > 0 ? output : error.Length > 0 ? error : $"exit {process.ExitCode}", isError: true);
        }
    }

    private static async Task<string> ReadCappedAsync(StreamReader reader, CancellationToken ct)
    {
        var sb = new StringBuilder();
        var buffer = new char[8192];
        try
        {
            int n;
            while ((n = await reader.ReadAsync(buffer.AsMemory(), ct)) > 0)
            {
                if (sb.Length < OutputLimit)
                {
                    sb.Append(buffer, 0, Math.Min(n, OutputLimit - sb.Length));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }

        return sb.Length >= OutputLimit ? sb + "\n[output truncated]" : sb.ToString();
    }
}

/// <summary>One entry of a <c>--tools</c> manifest.</summary>
public sealed class CustomToolDefinition
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("description")] public string Description { get; set; } = "";
    [JsonPropertyName("input_schema")] public JsonElement? InputSchema { get; set; }
    /// <summary>argv of the command, e.g. <c>["python3", "tools/weather.py"]</c>; a string runs through <c>/bin/bash -c</c>.</summary>
    [JsonPropertyName("command")] public JsonElement CommandJson { get; set; }
    [JsonPropertyName("timeout_ms")] public int? TimeoutMs { get; set; }

    [JsonIgnore]
    public IReadOnlyList<string> Command => CommandJson.ValueKind switch
    {
        JsonValueKind.String => ["/bin/bash", "-c", CommandJson.GetString()!],
        JsonValueKind.Array => CommandJson.EnumerateArray().Select(e => e.GetString() ?? "").ToList(),
        _ => [],
    };
}

/// <summary>A <c>--tools</c> manifest: <c>{"tools":[{"name","description","input_schema","command","timeout_ms"?}]}</c>.</summary>
public sealed class CustomToolManifest
{
    [JsonPropertyName("tools")] public List<CustomToolDefinition> Tools { get; set; } = [];

    /// <summary>Reads and validates a manifest; errors name the file, the entry and the field.</summary>
    public static CustomToolManifest Load(string path)
    {
        CustomToolManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(File.ReadAllText(path), WorkerJsonContext.Default.CustomToolManifest);
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"--tools {path}: {ex.Message}");
        }

        if (manifest is null || manifest.Tools.Count == 0)
        {
            throw new ArgumentException($"--tools {path}: expected {{\"tools\":[...]}} with at least one tool");
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < manifest.Tools.Count; i++)
        {
            var t = manifest.Tools[i];
            var where = $"--tools {path}: tools[{i}]";
            if (string.IsNullOrEmpty(t.Name) || !t.Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
            {
                throw new ArgumentException($"{where}.name: 1-128 letters, digits, '_' or '-'");
            }

            if (t.Name is "bash" or "read" or "write" or "edit" or "glob" or "grep" || !names.Add(t.Name))
            {
                throw new ArgumentException($"{where}.name: '{t.Name}' is a built-in tool or a duplicate");
            }

            if (t.Command.Count == 0 || t.Command.Any(string.IsNullOrEmpty))
            {
                throw new ArgumentException($"{where}.command: a non-empty string or list of strings");
            }

            if (t.TimeoutMs is <= 0)
            {
                throw new ArgumentException($"{where}.timeout_ms: must be positive");
            }
        }

        return manifest;
    }
}

[JsonSerializable(typeof(CustomToolManifest))]
internal sealed partial class WorkerJsonContext : JsonSerializerContext;
