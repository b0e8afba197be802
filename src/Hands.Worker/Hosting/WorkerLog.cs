using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Hands.Worker.Hosting;

/// <summary>
/// The worker's log: one line per record on stderr, as <c>text</c> (<c>time LEVEL message key=value ...</c>) or
/// <c>json</c> (one object per line), like <c>ant beta:worker --log-format</c>. Callers never pass credentials.
/// </summary>
public sealed class WorkerLog
{
    private readonly bool _json;
    private readonly TextWriter _out;
    private readonly Lock _gate = new();

    public WorkerLog(string format = "text", TextWriter? output = null)
    {
        _json = format == "json";
        _out = output ?? Console.Error;
    }

    public static WorkerLog Silent { get; } = new("text", TextWriter.Null);

    public void Debug(string message, params (string Key, object? Value)[] fields) => Write("DEBUG", message, fields);
    public void Info(string message, params (string Key, object? Value)[] fields) => Write("INFO", message, fields);
    public void Warn(string message, params (string Key, object? Value)[] fields) => Write("WARN", message, fields);
    public void Error(string message, params (string Key, object? Value)[] fields) => Write("ERROR", message, fields);

    private void Write(string level, string message, (string Key, object? Value)[] fields)
    {
        if (level == "DEBUG" && Environment.GetEnvironmentVariable("HANDS_WORKER_DEBUG") != "1")
        {
            return;
        }

        var time = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        string line;
        if (_json)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("time", time);
                w.WriteString("level", level);
                w.WriteString("msg", message);
                foreach (var (key, value) in fields)
                {
                    w.WriteString(key, Format(value));
                }

                w.WriteEndObject();
            }

            line = Encoding.UTF8.GetString(buffer.ToArray());
        }
        else
        {
            var sb = new StringBuilder().Append(time).Append(' ').Append(level).Append(' ').Append(message);
            foreach (var (key, value) in fields)
            {
                var text = Format(value);
                sb.Append(' ').Append(key).Append('=').Append(text.Contains(' ', StringComparison.Ordinal) ? JsonSerializer.Serialize(text, Hands.Protocol.Json.ProtocolJsonContext.Default.String) : text);
            }

            line = sb.ToString();
        }

        lock (_gate)
        {
            _out.WriteLine(line);
            _out.Flush();
        }
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        TimeSpan t => ((long)t.TotalMilliseconds).ToString(CultureInfo.InvariantCulture) + "ms",
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
