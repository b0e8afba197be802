using System.Globalization;
using System.Net.Http.Headers;
using System.Net.ServerSentEvents;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Client;

/// <summary>
/// One sandbox's own API (the daemon behind the proxy, <c>/api/v1/...</c>): processes, output, stdin, files, health.
/// Starting a process, running one and writing stdin are never retried (a retry could run a command twice).
/// </summary>
public sealed class SandboxProxyClient
{
    private readonly TensorlakeTransport _transport;
    private readonly string _base;
    private readonly Dictionary<string, string> _headers;

    internal SandboxProxyClient(TensorlakeTransport transport, string baseUrl, string sandboxId, Dictionary<string, string> headers)
    {
        _transport = transport;
        _base = baseUrl;
        SandboxId = sandboxId;
        _headers = headers;
    }

    public string SandboxId { get; }

    /// <summary>The proxy base URL this client talks to.</summary>
    public string BaseUrl => _base;

    private static string Ref(string pidOrName) => Uri.EscapeDataString(pidOrName);

    public Task<ProcessInfo> StartProcessAsync(StartProcessRequest request, CancellationToken cancellationToken = default) =>
        _transport.JsonAsync(HttpMethod.Post, $"{_base}/api/v1/processes", TensorlakeTransport.Json(request, SandboxesJsonContext.Default.StartProcessRequest),
            idempotent: false, SandboxesJsonContext.Default.ProcessInfo, cancellationToken, _headers);

    public async Task<IReadOnlyList<ProcessInfo>> ListProcessesAsync(CancellationToken cancellationToken = default) =>
        (await _transport.JsonAsync(HttpMethod.Get, $"{_base}/api/v1/processes", null, idempotent: true, SandboxesJsonContext.Default.ProcessList, cancellationToken, _headers).ConfigureAwait(false)).Processes;

    public Task<ProcessInfo> GetProcessAsync(string pidOrName, CancellationToken cancellationToken = default) =>
        _transport.JsonAsync(HttpMethod.Get, $"{_base}/api/v1/processes/{Ref(pidOrName)}", null, idempotent: true, SandboxesJsonContext.Default.ProcessInfo, cancellationToken, _headers);

    /// <summary>Kills the process (SIGKILL); for a managed process, stops its supervisor too.</summary>
    public async Task KillProcessAsync(string pidOrName, CancellationToken cancellationToken = default)
    {
        using var _ = await _transport.SendAsync(HttpMethod.Delete, $"{_base}/api/v1/processes/{Ref(pidOrName)}", null, idempotent: true, cancellationToken, _headers).ConfigureAwait(false);
    }

    public async Task SignalProcessAsync(string pidOrName, int signal, CancellationToken cancellationToken = default)
    {
        var body = new StringContent($"{{\"signal\":{signal.ToString(CultureInfo.InvariantCulture)}}}", Encoding.UTF8, "application/json");
        using var _ = await _transport.SendAsync(HttpMethod.Post, $"{_base}/api/v1/processes/{Ref(pidOrName)}/signal", body, idempotent: false, cancellationToken, _headers).ConfigureAwait(false);
    }

    /// <summary>Writes raw bytes to a process started with <c>stdin_mode: pipe</c>.</summary>
    public async Task WriteStdinAsync(string pidOrName, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        var body = new ByteArrayContent(data.ToArray());
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var _ = await _transport.SendAsync(HttpMethod.Post, $"{_base}/api/v1/processes/{Ref(pidOrName)}/stdin", body, idempotent: false, cancellationToken, _headers).ConfigureAwait(false);
    }

    public async Task CloseStdinAsync(string pidOrName, CancellationToken cancellationToken = default)
    {
        using var _ = await _transport.SendAsync(HttpMethod.Post, $"{_base}/api/v1/processes/{Ref(pidOrName)}/stdin/close", null, idempotent: false, cancellationToken, _headers).ConfigureAwait(false);
    }

    /// <summary>Captured output so far; <paramref name="stream"/> is <c>stdout</c>, <c>stderr</c> or <c>output</c> (both).</summary>
    public Task<ProcessOutput> GetOutputAsync(string pidOrName, string stream = "output", CancellationToken cancellationToken = default) =>
        _transport.JsonAsync(HttpMethod.Get, $"{_base}/api/v1/processes/{Ref(pidOrName)}/{CheckStream(stream)}", null, idempotent: true,
            SandboxesJsonContext.Default.ProcessOutput, cancellationToken, _headers);

    /// <summary>Captured lines, then live ones, until the process exits (SSE <c>output</c> events, then <c>eof</c>).</summary>
    public async IAsyncEnumerable<ProcessEvent> FollowOutputAsync(string pidOrName, string stream = "output", [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var headers = new Dictionary<string, string>(_headers) { ["Accept"] = "text/event-stream" };
        using var response = await _transport.SendAsync(HttpMethod.Get, $"{_base}/api/v1/processes/{Ref(pidOrName)}/{CheckStream(stream)}/follow", null,
            idempotent: true, cancellationToken, headers, streaming: true).ConfigureAwait(false);
        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await foreach (var item in SseParser.Create(body).EnumerateAsync(cancellationToken).ConfigureAwait(false))
        {
            if (item.EventType == "eof")
            {
                yield break;
            }

            if (Parse(item.Data) is { IsOutput: true } e)
            {
                yield return e;
            }
        }
    }

    /// <summary>
    /// Runs a command to completion (<c>POST /api/v1/processes/run</c>) and yields its frames as they stream: started,
    /// output lines, exit. Frames are told apart by shape; unparseable or keep-alive frames are skipped.
    /// </summary>
    public async IAsyncEnumerable<ProcessEvent> RunStreamingAsync(RunProcessRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var headers = new Dictionary<string, string>(_headers) { ["Accept"] = "text/event-stream" };
        using var response = await _transport.SendAsync(HttpMethod.Post, $"{_base}/api/v1/processes/run",
            TensorlakeTransport.Json(request, SandboxesJsonContext.Default.RunProcessRequest), idempotent: false, cancellationToken, headers, streaming: true).ConfigureAwait(false);
        var mediaType = response.Content.Headers.ContentType?.MediaType;
        if (mediaType != "text/event-stream")
        {
            throw new TensorlakeException((int)response.StatusCode, "BAD_RESPONSE", $"run answered {mediaType ?? "no content type"}, not text/event-stream", null);
        }

        await using var body = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await foreach (var item in SseParser.Create(body).EnumerateAsync(cancellationToken).ConfigureAwait(false))
        {
            if (Parse(item.Data) is { } e && (e.IsStarted || e.IsOutput || e.IsExit))
            {
                yield return e;
            }
        }
    }

    /// <summary>
    /// Runs a command and collects its output. The exit code is <c>exit_code</c>, or minus the signal; a stream that
    /// ends without an exit frame throws (the command's fate is unknown).
    /// </summary>
    public async Task<CommandResult> RunAsync(RunProcessRequest request, CancellationToken cancellationToken = default)
    {
        var stdout = new List<string>();
        var stderr = new List<string>();
        int? pid = null;
        await foreach (var e in RunStreamingAsync(request, cancellationToken).ConfigureAwait(false))
        {
            if (e.IsStarted)
            {
                pid = e.Pid;
            }
            else if (e.IsOutput)
            {
                (e.Stream == "stderr" ? stderr : stdout).Add(e.Line!);
            }
            else if (e.IsExit)
            {
                return new CommandResult(e.ExitCode ?? -(e.Signal ?? 0), string.Join('\n', stdout), string.Join('\n', stderr), e.Signal, pid) { OomKilled = e.OomKilled == true };
            }
        }

        throw new TensorlakeException(0, "CONNECTION_CLOSED", $"the run stream of '{request.Command}' ended without an exit status", null);
    }

    public async Task<byte[]> ReadFileAsync(string path, CancellationToken cancellationToken = default)
    {
        using var response = await _transport.SendAsync(HttpMethod.Get, $"{_base}/api/v1/files?path={Uri.EscapeDataString(path)}", null, idempotent: true, cancellationToken, _headers).ConfigureAwait(false);
        return await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes (creates or overwrites) a file; parent directories are created; durable when this returns.</summary>
    public async Task WriteFileAsync(string path, ReadOnlyMemory<byte> content, CancellationToken cancellationToken = default)
    {
        var body = new ByteArrayContent(content.ToArray());
        body.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        using var _ = await _transport.SendAsync(HttpMethod.Put, $"{_base}/api/v1/files?path={Uri.EscapeDataString(path)}", body, idempotent: true, cancellationToken, _headers).ConfigureAwait(false);
    }

    public async Task DeleteFileAsync(string path, CancellationToken cancellationToken = default)
    {
        using var _ = await _transport.SendAsync(HttpMethod.Delete, $"{_base}/api/v1/files?path={Uri.EscapeDataString(path)}", null, idempotent: true, cancellationToken, _headers).ConfigureAwait(false);
    }

    public Task<DirectoryListing> ListDirectoryAsync(string path, CancellationToken cancellationToken = default) =>
        _transport.JsonAsync(HttpMethod.Get, $"{_base}/api/v1/files/list?path={Uri.EscapeDataString(path)}", null, idempotent: true,
            SandboxesJsonContext.Default.DirectoryListing, cancellationToken, _headers);

    /// <summary>True when the daemon answers <c>{"healthy": true}</c>.</summary>
    public async Task<bool> HealthAsync(CancellationToken cancellationToken = default)
    {
        var health = await _transport.JsonAsync(HttpMethod.Get, $"{_base}/api/v1/health", null, idempotent: true,
            SandboxesJsonContext.Default.DictionaryStringJsonElement, cancellationToken, _headers).ConfigureAwait(false);
        return health.TryGetValue("healthy", out var h) && h.ValueKind == JsonValueKind.True;
    }

    private static string CheckStream(string stream) =>
        stream is "stdout" or "stderr" or "output" ? stream : throw new ArgumentException("stream is stdout, stderr or output", nameof(stream));

    private static ProcessEvent? Parse(string data)
    {
        if (string.IsNullOrWhiteSpace(data))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize(data, SandboxesJsonContext.Default.ProcessEvent);
        }
        catch (JsonException)
        {
            return null; // keep-alive or an unknown frame
        }
    }
}
