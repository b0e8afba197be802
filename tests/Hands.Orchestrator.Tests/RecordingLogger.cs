using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Hands.Orchestrator.Tests;

/// <summary>Keeps every formatted log line, so a test can check what an operator would read.</summary>
internal sealed class RecordingLogger : ILogger
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Lines { get; } = new();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Lines.Enqueue((logLevel, formatter(state, exception)));

    public bool Saw(LogLevel level, string text) => Lines.Any(l => l.Level == level && l.Message.Contains(text, StringComparison.Ordinal));
}
