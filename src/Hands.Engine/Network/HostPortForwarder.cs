using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Hands.Engine.Hosting;
using Microsoft.Extensions.Logging;

namespace Hands.Engine.Network;

/// <summary>
/// The forwarder process (<c>hands engine forwarder --data DIR</c>): serves the host-port forwards of an engine's
/// sandboxes (<see cref="HostPortForwards"/>, route gates included) from a process of its own, so that they live as long
/// as the sandboxes rather than as long as the engine. A killed or upgraded engine leaves it serving with the last state
/// it was told, connections in flight included; the engine, started again, connects to it and sends the state it has.
/// </summary>
/// <remarks>
/// One per data directory (an exclusive lock in <c>{data}/forwarder/</c>); a second start prints
/// <see cref="BusyLine"/> and exits, and the engine connects to the first. It takes a session of its own (a terminal's
/// Ctrl-C to the engine does not reach it), and after its ready line its standard output and error go to
/// <c>{data}/forwarder/forwarder.log</c>. It ends when the engine tells it to (the engine stops with no sandbox left),
/// or when its data directory or control socket is gone.
/// </remarks>
public static class HostPortForwarder
{
    /// <summary>Printed once on standard output when the control socket accepts connections.</summary>
    public const string ReadyLine = "hands-forwarder ready";

    /// <summary>Printed instead when another forwarder already serves the data directory.</summary>
    public const string BusyLine = "hands-forwarder already running";

    private static readonly TimeSpan LivenessCheck = TimeSpan.FromSeconds(5);

    /// <summary>Serves until told to exit or <paramref name="cancellationToken"/> is cancelled; returns the exit code.</summary>
    public static async Task<int> RunAsync(string dataDirectory, CancellationToken cancellationToken)
    {
        var paths = new ForwarderPaths(Path.GetFullPath(dataDirectory));
        if (!System.IO.Directory.Exists(dataDirectory))
        {
            await Console.Error.WriteLineAsync($"hands engine forwarder: no data directory {dataDirectory}").ConfigureAwait(false);
            return 2;
        }

        OwnerOnlyDirectory.Ensure(paths.Directory);
        FileStream held;
        try
        {
            // FileShare.None is an exclusive flock, released by the kernel when this process dies.
            held = new FileStream(paths.LockFile, new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.None, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
        }
        catch (IOException)
        {
            WriteToStandardOutput(BusyLine);
            return 0;
        }

        using (held)
        {
            _ = Native.SetSid();
            await File.WriteAllTextAsync(paths.PidFile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n", cancellationToken).ConfigureAwait(false);
            File.Delete(paths.Socket);
            using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(paths.Socket));
            File.SetUnixFileMode(paths.Socket, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            listener.Listen(16);

            await using var log = new StreamWriter(new FileStream(paths.LogFile, new FileStreamOptions
            {
                Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            }), Encoding.UTF8) { AutoFlush = true };
            WriteToStandardOutput(ReadyLine);
            DetachStandardStreams(log);
            var logger = new LineLogger(log);
            logger.LogInformation("forwarder {Pid} serving {Data}", Environment.ProcessId, dataDirectory);

            using var exit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            await using var state = new ForwarderState(logger);
            var liveness = WatchLivenessAsync(paths, dataDirectory, exit, logger);
            try
            {
                while (!exit.IsCancellationRequested)
                {
                    var connection = await listener.AcceptAsync(exit.Token).ConfigureAwait(false);
                    _ = ServeAsync(connection, state, exit, logger);
                }
            }
            catch (OperationCanceledException)
            {
                // Told to exit.
            }

            await exit.CancelAsync().ConfigureAwait(false);
            await liveness.ConfigureAwait(false);
            logger.LogInformation("forwarder {Pid} exiting", Environment.ProcessId);
            File.Delete(paths.PidFile);
            return 0;
        }
    }

    /// <summary>One connection: a request per line, a reply per line, until it closes.</summary>
    private static async Task ServeAsync(Socket connection, ForwarderState state, CancellationTokenSource exit, ILogger logger)
    {
        try
        {
            await using var stream = new NetworkStream(connection, ownsSocket: true);
            using var reader = new StreamReader(stream, Encoding.UTF8);
            await using var writer = new StreamWriter(stream, new UTF8Encoding(false)) { AutoFlush = true, NewLine = "\n" };
            while (await reader.ReadLineAsync(exit.Token).ConfigureAwait(false) is { } line)
            {
                var request = JsonSerializer.Deserialize(line, ForwarderJson.Default.ForwarderRequest);
                ForwarderReply reply;
                switch (request?.Type)
                {
                    case "sync":
                        reply = await state.ApplyAsync(request).ConfigureAwait(false);
                        break;
                    case "busy":
                        reply = new ForwarderReply { Ok = true, Busy = state.Busy };
                        break;
                    case "exit":
                        await writer.WriteLineAsync(JsonSerializer.Serialize(new ForwarderReply { Ok = true }, ForwarderJson.Default.ForwarderReply)).ConfigureAwait(false);
                        logger.LogInformation("the engine asked the forwarder to exit");
                        await exit.CancelAsync().ConfigureAwait(false);
                        return;
                    default:
                        reply = new ForwarderReply { Ok = false, Failed = { [0] = $"unknown request type '{request?.Type}'" } };
                        break;
                }

                await writer.WriteLineAsync(JsonSerializer.Serialize(reply, ForwarderJson.Default.ForwarderReply)).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException or JsonException or ObjectDisposedException)
        {
            logger.LogDebug("control connection ended: {Error}", ex.Message);
        }
    }

    /// <summary>Ends the forwarder when what it serves is gone: its data directory removed, or its socket replaced.</summary>
    private static async Task WatchLivenessAsync(ForwarderPaths paths, string dataDirectory, CancellationTokenSource exit, ILogger logger)
    {
        using var timer = new PeriodicTimer(LivenessCheck);
        try
        {
            while (await timer.WaitForNextTickAsync(exit.Token).ConfigureAwait(false))
            {
                if (!System.IO.Directory.Exists(dataDirectory) || !File.Exists(paths.Socket))
                {
                    logger.LogWarning("data directory or control socket gone; exiting");
                    await exit.CancelAsync().ConfigureAwait(false);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Exiting.
        }
    }

    /// <summary>Writes one line to file descriptor 1 without going through <see cref="Console"/>, which keeps its own copy of it.</summary>
    private static void WriteToStandardOutput(string line)
    {
        using var stdout = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(1, ownsHandle: false), FileAccess.Write);
        stdout.Write(Encoding.UTF8.GetBytes(line + "\n"));
        stdout.Flush();
    }

    /// <summary>
    /// Points standard output and error at the log and input at /dev/null: the engine's pipe closes (it read the ready
    /// line), and nothing the runtime prints later goes to a terminal or journal that may be gone.
    /// </summary>
    private static void DetachStandardStreams(StreamWriter log)
    {
        var logFd = (int)((FileStream)log.BaseStream).SafeFileHandle.DangerousGetHandle();
        _ = Native.Dup2(logFd, 1);
        _ = Native.Dup2(logFd, 2);
        using var devNull = new FileStream("/dev/null", FileMode.Open, FileAccess.Read);
        _ = Native.Dup2((int)devNull.SafeFileHandle.DangerousGetHandle(), 0);
    }

    /// <summary>A logger that writes timestamped lines to the forwarder's log.</summary>
    private sealed class LineLogger(TextWriter writer) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            lock (writer)
            {
                writer.WriteLine($"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {logLevel.ToString().ToLowerInvariant()}: {formatter(state, exception)}");
            }
        }
    }
}
