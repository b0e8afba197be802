using System.Text.Json;
using System.Text.Json.Nodes;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Tests;

/// <summary>
/// Event shapes the service sends since SDK 1.14.0 (reference/drift-2026-11.md) read and written back unchanged by the
/// one flat <see cref="SessionEvent"/>: nothing a client does not model is dropped, and no shape fails to read. The
/// JSON is the SDK's own types (<c>resources/beta/sessions/events.d.ts</c>) filled in.
/// </summary>
public sealed class NewerEventShapeTests
{
    public static TheoryData<string> Events() =>
    [
        """{"type":"workflow_run.status_ended","id":"sevt_1","processed_at":"2026-11-30T00:00:00Z","workflow_run_id":"wfrun_1","result":{"type":"completed","output":"done"}}""",
        """{"type":"workflow_run.status_ended","id":"sevt_2","processed_at":"2026-11-30T00:00:00Z","workflow_run_id":"wfrun_1","result":{"type":"error","error":{"type":"timeout_error","message":"took too long"}}}""",
        """{"type":"workflow_run.created","id":"sevt_3","processed_at":"2026-11-30T00:00:00Z","workflow_run_id":"wfrun_1","phases":[{"id":"phase_1","name":"research"}]}""",
        """{"type":"workflow_run.error","id":"sevt_4","processed_at":"2026-11-30T00:00:00Z","workflow_run_id":"wfrun_1","error":{"type":"thread_limit_error","message":"too many threads"}}""",
        """{"type":"session.thread_created","id":"sevt_5","processed_at":"2026-11-30T00:00:00Z","session_thread_id":"sthr_1","agent_name":"researcher","workflow_run_id":"wfrun_1"}""",
        """{"type":"session.status_idle","id":"sevt_6","processed_at":"2026-11-30T00:00:00Z","stop_reason":{"type":"refusal"},"stop_details":{"type":"refusal","category":"cyber","explanation":"no"}}""",
        """{"type":"session.status_idle","id":"sevt_7","processed_at":"2026-11-30T00:00:00Z","stop_reason":{"type":"end_turn"},"stop_details":null}""",
        """{"type":"session.error","id":"sevt_8","processed_at":"2026-11-30T00:00:00Z","error":{"type":"repository_clone_error","message":"clone failed","repository_url":null,"retry_status":{"type":"terminal"}}}""",
        """{"type":"agent.tool_use","id":"sevt_9","processed_at":"2026-11-30T00:00:00Z","name":"bash","input":{"command":"ls"},"evaluated_permission":"ask","evaluation":{"type":"auto","evaluated_permission":{"type":"ask","reason_code":"indeterminate"}}}""",
        """{"type":"user.tool_confirmation","id":"sevt_10","processed_at":"2026-11-30T00:00:00Z","tool_use_id":"sevt_9","result":"allow"}""",
        """{"type":"some.type_from_next_year","id":"sevt_11","processed_at":"2026-11-30T00:00:00Z","result":[1,2],"name":"x"}""",
    ];

    [Theory]
    [MemberData(nameof(Events))]
    public void An_event_reads_and_writes_back_unchanged(string json)
    {
        var parsed = JsonSerializer.Deserialize(json, ProtocolJsonContext.Default.SessionEvent)!;
        var written = JsonSerializer.Serialize(parsed, ProtocolJsonContext.Default.SessionEvent);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(json), JsonNode.Parse(written)), $"wrote {written}");
    }

    [Fact]
    public void A_refusal_and_a_confirmation_read_as_their_typed_fields()
    {
        var refusal = JsonSerializer.Deserialize("""{"type":"session.status_idle","stop_reason":{"type":"refusal"},"stop_details":{"type":"refusal","category":"bio","explanation":null}}""",
            ProtocolJsonContext.Default.SessionEvent)!;
        Assert.Equal(StopReasons.Refusal, refusal.StopReason!.Type);
        Assert.Equal("bio", refusal.StopDetails.GetProperty("category").GetString());

        var confirmation = JsonSerializer.Deserialize("""{"type":"user.tool_confirmation","result":"deny"}""", ProtocolJsonContext.Default.SessionEvent)!;
        Assert.Equal("deny", confirmation.Result);
        var ended = JsonSerializer.Deserialize("""{"type":"workflow_run.status_ended","result":{"type":"stopped"}}""", ProtocolJsonContext.Default.SessionEvent)!;
        Assert.Null(ended.Result);
        Assert.Equal("stopped", ended.ResultValue!.Value.GetProperty("type").GetString());
    }
}
