using Hands.Protocol.Models;
using Hands.Worker.Runner;
using Hands.Worker.Tools;

namespace Hands.Worker.Tests;

/// <summary>One tool call's state machine, without a control plane: what runs, what waits, and what is never run twice.</summary>
[Trait("Tier", "Unit")]
public sealed class ToolCallLedgerTests
{
    private static SessionEvent Call(string id) => new() { Id = id, Type = EventTypes.AgentToolUse, Name = "bash" };

    [Fact]
    public void A_call_is_routed_once_however_often_it_is_seen()
    {
        var ledger = new ToolCallLedger();
        var call = ledger.Arrive(Call("tu_1"));
        Assert.NotNull(call);
        Assert.True(ledger.TryMove(call, ToolCallState.Queued));

        Assert.Null(ledger.Arrive(Call("tu_1"))); // the live event after the history read
        Assert.True(ledger.TryMove(call, ToolCallState.Running));
        Assert.Null(ledger.Arrive(Call("tu_1"))); // a reconnect while it runs
        Assert.True(ledger.HasOutstanding);
    }

    [Fact]
    public void An_answered_call_is_never_routed_again_and_keeps_nothing_but_its_id()
    {
        var ledger = new ToolCallLedger();
        var call = ledger.Arrive(Call("tu_1"))!;
        ledger.TryMove(call, ToolCallState.Queued);
        ledger.TryMove(call, ToolCallState.Running);
        ledger.TryMove(call, ToolCallState.Answered);

        Assert.Null(ledger.Arrive(Call("tu_1")));
        Assert.Null(call.Event);
        Assert.False(ledger.HasOutstanding);
        Assert.False(ledger.TryMove(call, ToolCallState.Queued));
    }

    [Fact]
    public void A_result_seen_in_history_before_its_call_means_the_call_is_not_run()
    {
        var ledger = new ToolCallLedger();
        ledger.Answered("tu_1");
        Assert.Null(ledger.Arrive(Call("tu_1")));
        Assert.Equal(ToolCallState.Answered, ledger.StateOf("tu_1"));
    }

    [Fact]
    public void A_failed_post_keeps_the_output_and_the_next_arrival_posts_it_without_running_again()
    {
        var ledger = new ToolCallLedger();
        var call = ledger.Arrive(Call("tu_1"))!;
        ledger.TryMove(call, ToolCallState.Queued);
        ledger.TryMove(call, ToolCallState.Running);
        var output = ToolOutput.Text("done", isError: false);
        ledger.KeepUnsent(call, output);
        Assert.False(ledger.HasOutstanding); // an unsent result does not hold the idle clock

        var again = ledger.Arrive(Call("tu_1"));
        Assert.Same(call, again);
        Assert.Equal(ToolCallState.Unsent, again!.State);
        Assert.Same(output, again.Output);
        Assert.True(ledger.TryMove(again, ToolCallState.Queued));
    }

    [Fact]
    public void A_verdict_that_comes_first_is_kept_for_its_call()
    {
        var ledger = new ToolCallLedger();
        Assert.Null(ledger.Confirmed("tu_1", "allow"));
        var call = ledger.Arrive(Call("tu_1"));
        Assert.Equal("allow", call!.Verdict);
    }

    [Fact]
    public void A_call_waiting_for_confirmation_is_answered_to_its_verdict()
    {
        var ledger = new ToolCallLedger();
        var call = ledger.Arrive(Call("tu_1"))!;
        ledger.TryMove(call, ToolCallState.AwaitingConfirmation);
        Assert.True(ledger.HasOutstanding);
        Assert.Same(call, ledger.Confirmed("tu_1", "deny"));
        Assert.Equal("deny", call.Verdict);
        Assert.Null(ledger.Confirmed("tu_2", "allow"));
    }

    [Theory]
    [InlineData("AwaitingConfirmation", "Running")]
    [InlineData("NotOurs", "Queued")]
    [InlineData("Answered", "Running")]
    [InlineData("Unsent", "Running")]
    [InlineData("Queued", "Unsent")]
    public void Moves_the_table_does_not_list_are_refused(string from, string to) =>
        Assert.False(ToolCallLedger.CanMove(Enum.Parse<ToolCallState>(from), Enum.Parse<ToolCallState>(to)));
}
