using System.Diagnostics;
using Hands.Sandboxes.Models;
using Hands.Testing;

namespace Hands.Engine.Tests.Orchestration;

/// <summary>
/// A call through the ingress is one SERVER span in the caller's trace, named by the daemon's route, and the wake it
/// causes hangs beneath it: the hop between the client and the sandbox is on the timeline, not a gap.
/// </summary>
[Collection(EngineCollection.Name)]
public sealed class IngressSpanTests(EngineFixture engine)
{
    [Fact]
    public async Task A_call_through_the_ingress_is_a_server_span_under_the_callers_with_its_wake_beneath_it()
    {
        await using var sandbox = await engine.CreateAsync(new CreateSandboxRequest { Name = "ingress-spans" });
        using var trace = new TraceCapture();
        await sandbox.Proxy.WriteFileAsync("/workspace/traced.txt", "x"u8.ToArray());
        await engine.Client.SuspendAsync(sandbox.Id);
        await engine.Client.WaitForStatusAsync(sandbox.Id, [SandboxStatus.Suspended], TimeSpan.FromSeconds(30));
        Assert.Equal("x", System.Text.Encoding.UTF8.GetString(await sandbox.Proxy.ReadFileAsync("/workspace/traced.txt")));

        var hops = trace.Spans.Where(s => s.Kind == ActivityKind.Server && (string?)s.GetTagItem("hands.sandbox.id") == sandbox.Id).ToList();
        Assert.Equal(["PUT /api/v1/files", "GET /api/v1/files"], hops.Select(h => h.DisplayName));
        Assert.Equal([204, 200], hops.Select(h => (int)h.GetTagItem("http.response.status_code")!));
        foreach (var hop in hops)
        {
            // Under the client's own span for that call, which sent its traceparent.
            var call = Assert.Single(trace.Spans, s => s.SpanId == hop.ParentSpanId);
            Assert.Equal(ActivityKind.Client, call.Kind);
            Assert.Equal(9501, hop.GetTagItem("hands.sandbox.port"));
        }

        // The write found it running; the read found it frozen and woke it, inside the hop.
        Assert.Null(hops[0].GetTagItem("hands.ingress.woke"));
        Assert.Equal("frozen", hops[1].GetTagItem("hands.ingress.woke"));
        var wake = Assert.Single(trace.Named("hands.sandbox.resume"));
        Assert.Equal(hops[1].SpanId, wake.ParentSpanId);
        Assert.DoesNotContain(EngineFixture.ApiKey, trace.Dump(), StringComparison.Ordinal);
    }
}
