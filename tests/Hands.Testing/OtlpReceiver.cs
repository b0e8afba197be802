using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Hands.Testing;

/// <summary>One span as an OTLP collector received it.</summary>
public sealed record ReceivedSpan(string ServiceName, string Scope, string TraceId, string SpanId, string ParentSpanId, string Name, int Kind,
    int StatusCode, IReadOnlyDictionary<string, string> Attributes)
{
    public string? Tag(string key) => Attributes.TryGetValue(key, out var value) ? value : null;
}

/// <summary>
/// A loopback OTLP/HTTP (protobuf) trace receiver: what a collector would get from an exporter, decoded by hand
/// (the few fields of <c>ExportTraceServiceRequest</c> the tests read: resource <c>service.name</c>, scope, ids,
/// name, kind, status, attributes). It also keeps every request body, for searching for what must never be sent.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ReceivedSpan> _spans = [];
    private readonly List<byte[]> _bodies = [];

    private OtlpReceiver(WebApplication app) => _app = app;

    public static async Task<OtlpReceiver> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var app = builder.Build();
        var receiver = new OtlpReceiver(app);
        app.MapPost("/v1/traces", async context =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var bytes = body.ToArray();
            var spans = Decode(bytes);
            lock (receiver._spans)
            {
                receiver._bodies.Add(bytes);
                receiver._spans.AddRange(spans);
            }

            context.Response.ContentType = "application/x-protobuf";
            context.Response.StatusCode = 200; // an empty ExportTraceServiceResponse: all accepted
        });
        await app.StartAsync();
        return receiver;
    }

    public IReadOnlyList<ReceivedSpan> Spans
    {
        get
        {
            lock (_spans)
            {
                return [.. _spans];
            }
        }
    }

    /// <summary>Every body received, as text (protobuf strings are UTF-8 in the bytes), for asserting what is never in it.</summary>
    public string RawText()
    {
        lock (_spans)
        {
            return string.Join("\n", _bodies.Select(b => Encoding.UTF8.GetString(b)));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal static List<ReceivedSpan> Decode(byte[] request)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var (field, resourceSpans) in Fields(request))
        {
            if (field != 1)
            {
                continue;
            }

            var service = "";
            foreach (var (f, value) in Fields(resourceSpans.Bytes))
            {
                if (f == 1)
                {
                    var attributes = Attributes(value.Bytes, 1);
                    service = attributes.GetValueOrDefault("service.name", "");
                }
            }

            foreach (var (f, scopeSpans) in Fields(resourceSpans.Bytes))
            {
                if (f != 2)
                {
                    continue;
                }

                var scope = "";
                foreach (var (sf, value) in Fields(scopeSpans.Bytes))
                {
                    if (sf == 1)
                    {
                        scope = Fields(value.Bytes).Where(x => x.Field == 1).Select(x => Encoding.UTF8.GetString(x.Value.Bytes)).FirstOrDefault() ?? "";
                    }
                    else if (sf == 2)
                    {
                        spans.Add(Span(service, scope, value.Bytes));
                    }
                }
            }
        }

        return spans;
    }

    private static ReceivedSpan Span(string service, string scope, byte[] span)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        int kind = 0, status = 0;
        foreach (var (f, value) in Fields(span))
        {
            switch (f)
            {
                case 1: traceId = Convert.ToHexStringLower(value.Bytes); break;
                case 2: spanId = Convert.ToHexStringLower(value.Bytes); break;
                case 4: parent = Convert.ToHexStringLower(value.Bytes); break;
                case 5: name = Encoding.UTF8.GetString(value.Bytes); break;
                case 6: kind = (int)value.Number; break;
                case 15: status = (int)Fields(value.Bytes).Where(x => x.Field == 3).Select(x => x.Value.Number).FirstOrDefault(); break;
            }
        }

        return new ReceivedSpan(service, scope, traceId, spanId, parent, name, kind, status, Attributes(span, 9));
    }

    /// <summary>The <c>KeyValue</c>s in field <paramref name="field"/> of a message, each value as text.</summary>
    private static Dictionary<string, string> Attributes(byte[] message, int field)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (f, keyValue) in Fields(message))
        {
            if (f != field)
            {
                continue;
            }

            string? key = null, text = null;
            foreach (var (kf, part) in Fields(keyValue.Bytes))
            {
                if (kf == 1)
                {
                    key = Encoding.UTF8.GetString(part.Bytes);
                }
                else if (kf == 2)
                {
                    foreach (var (vf, v) in Fields(part.Bytes))
                    {
                        text = vf switch
                        {
                            1 => Encoding.UTF8.GetString(v.Bytes),
                            2 => v.Number != 0 ? "true" : "false",
                            3 => ((long)v.Number).ToString(System.Globalization.CultureInfo.InvariantCulture),
                            4 => BitConverter.Int64BitsToDouble((long)v.Number).ToString(System.Globalization.CultureInfo.InvariantCulture),
                            _ => "(complex)",
                        };
                    }
                }
            }

            if (key is not null)
            {
                attributes[key] = text ?? "";
            }
        }

        return attributes;
    }

    private readonly record struct WireValue(ulong Number, byte[] Bytes);

    /// <summary>A protobuf message's fields in order: varints and fixed numbers as numbers, length-delimited ones as bytes.</summary>
    private static IEnumerable<(int Field, WireValue Value)> Fields(byte[] message)
    {
        var position = 0;
        while (position < message.Length)
        {
            var tag = Varint(message, ref position);
            var field = (int)(tag >> 3);
            switch (tag & 7)
            {
                case 0:
                    yield return (field, new WireValue(Varint(message, ref position), []));
                    break;
                case 1:
                    yield return (field, new WireValue(BitConverter.ToUInt64(message, position), []));
                    position += 8;
                    break;
                case 2:
                    var length = (int)Varint(message, ref position);
                    yield return (field, new WireValue(0, message[position..(position + length)]));
                    position += length;
                    break;
                case 5:
                    yield return (field, new WireValue(BitConverter.ToUInt32(message, position), []));
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"protobuf wire type {tag & 7} is not expected in OTLP");
            }
        }
    }

    private static ulong Varint(byte[] message, ref int position)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = message[position++];
            value |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }
    }
}
