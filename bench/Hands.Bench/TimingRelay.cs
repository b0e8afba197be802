using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Hands.Bench;

/// <summary>
/// A loopback TCP relay between a worker and the control plane that timestamps, per tool call, when the
/// <c>agent.tool_use</c> SSE frame passes towards the worker and when the worker's <c>user.tool_result</c> POST passes
/// towards the server. The difference is the worker's own overhead, measured the same way for any worker.
/// </summary>
internal sealed partial class TimingRelay : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Uri _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, long> _delivered = new();
    private readonly ConcurrentDictionary<string, long> _posted = new();

    public TimingRelay(Uri target)
    {
        _target = target;
        _listener.Start();
        _ = AcceptAsync();
    }

    public Uri Address => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    /// <summary>Per tool_use id: delivered → posted.</summary>
    public IEnumerable<TimeSpan> Intervals() =>
        _posted.Where(p => _delivered.ContainsKey(p.Key)).Select(p => Stopwatch.GetElapsedTime(_delivered[p.Key], p.Value));

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
                inbound.NoDelay = true;
                var outbound = new TcpClient { NoDelay = true };
                await outbound.ConnectAsync(_target.Host, _target.Port, _stop.Token);
                _ = PipeAsync(inbound, outbound, upstream: true);
                _ = PipeAsync(outbound, inbound, upstream: false);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task PipeAsync(TcpClient from, TcpClient to, bool upstream)
    {
        var buffer = new byte[64 * 1024];
        var carry = "";
        try
        {
            var source = from.GetStream();
            var sink = to.GetStream();
            int n;
            while ((n = await source.ReadAsync(buffer, _stop.Token)) > 0)
            {
                var now = Stopwatch.GetTimestamp();
                var text = carry + Encoding.ASCII.GetString(buffer, 0, n);
                foreach (Match m in (upstream ? ResultPattern() : ToolUsePattern()).Matches(text))
                {
                    (upstream ? _posted : _delivered).TryAdd(m.Groups[1].Value, now);
                }

                carry = text.Length > 256 ? text[^256..] : text;
                await sink.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            from.Dispose();
            to.Dispose();
        }
    }

    // The event's id is read from its data (whose first two members are type and id), so the frame's line order
    // (id: before or after data:) does not matter.
    [GeneratedRegex(@"event: agent\.tool_use\n(?:id: sevt_\w+\n)?data: \{""type"":""agent\.tool_use"",""id"":""(sevt_\w+)""")]
    private static partial Regex ToolUsePattern();

    [GeneratedRegex(@"""tool_use_id"":""(sevt_\w+)""")]
    private static partial Regex ResultPattern();

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        _stop.Dispose();
    }
}
