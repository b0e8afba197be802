using System.Text.Json;
using Hands.ControlPlane.Sessions;
using Hands.ControlPlane.Storage;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.ControlPlane.Scripted;

/// <summary>
/// The brain of the local control plane. For an agent whose model is <c>scripted:NAME</c> it plays scenario NAME:
/// each <c>user.message</c> plays the next turn; a tool step emits <c>agent.tool_use</c> (or
/// <c>agent.custom_tool_use</c>), idles the session with <c>requires_action</c> naming that event, and resumes when
/// the answer arrives. Every transition happens inside the caller's transaction, so a crash never leaves half a step.
/// Any other model answers with a <c>session.error</c> saying that no model provider is configured.
/// </summary>
public sealed class ScriptedAgentLoop(ScenarioLibrary scenarios)
{
    public const string ScriptedPrefix = "scripted:";

    /// <summary>A user message arrived: start a turn now, or queue it behind the running one.</summary>
    public void OnUserMessage(WriteScope scope, Session session, LoopState loop)
    {
        if (loop.InTurn)
        {
            loop.QueuedMessages++;
            return;
        }

        StartTurn(scope, session, loop);
    }

    /// <summary>The awaited built-in tool call was answered.</summary>
    public void OnToolResult(WriteScope scope, Session session, LoopState loop, SessionEvent result)
    {
        loop.Results.Add(new StepResult { Text = TextOf(result.Content), IsError = result.IsError == true });
        loop.Awaiting = null;
        loop.AwaitingCustom = false;
        loop.AwaitingConfirmation = false;
        loop.Step++;
        SetRunning(scope, session);
        Continue(scope, session, loop);
    }

    /// <summary>The user allowed or denied the call that waits for confirmation.</summary>
    public void OnConfirmation(WriteScope scope, Session session, LoopState loop, SessionEvent confirmation, string toolName)
    {
        loop.AwaitingConfirmation = false;
        if (confirmation.Result == "allow")
        {
            SetRunning(scope, session); // the worker now runs the call; the session waits for its result
            return;
        }

        var text = string.IsNullOrEmpty(confirmation.DenyMessage) ? $"Permission to use {toolName} has been denied." : confirmation.DenyMessage;
        loop.Results.Add(new StepResult { Text = text, IsError = true });
        loop.Awaiting = null;
        loop.Step++;
        SetRunning(scope, session);
        Continue(scope, session, loop);
    }

    /// <summary><c>user.interrupt</c>: abandon the running turn and go idle.</summary>
    public void OnInterrupt(WriteScope scope, Session session, LoopState loop)
    {
        loop.QueuedMessages = 0;
        if (!loop.InTurn)
        {
            return;
        }

        loop.InTurn = false;
        loop.Awaiting = null;
        loop.AwaitingCustom = false;
        loop.AwaitingConfirmation = false;
        loop.NextTurn++;
        GoIdle(scope, session, new StopReason { Type = "end_turn" });
    }

    private void StartTurn(WriteScope scope, Session session, LoopState loop)
    {
        SetRunning(scope, session);
        loop.InTurn = true;
        loop.Step = 0;
        loop.Results = [];
        Continue(scope, session, loop);
    }

    private void Continue(WriteScope scope, Session session, LoopState loop)
    {
        while (true)
        {
            if (!TryGetTurn(scope, session, loop, out var steps))
            {
                return;
            }

            if (loop.Step >= steps.Count)
            {
                EndTurn(scope, session, loop, new StopReason { Type = StopReasons.EndTurn });
                StartQueuedTurn(scope, session, loop);
                return;
            }

            var step = steps[loop.Step];
            if (step.Thinking)
            {
                scope.Emit(session.Id, new SessionEvent { Type = EventTypes.AgentThinking });
                loop.Step++;
                continue;
            }

            if (step.Emit is { } emitted)
            {
                var raw = JsonSerializer.Deserialize(emitted.GetRawText(), ProtocolJsonContext.Default.SessionEvent)!;
                raw.Id = null;
                raw.ProcessedAt = null;
                scope.Emit(session.Id, raw);
                loop.Step++;
                continue;
            }

            if (step.Refusal is { } refusal)
            {
                var start = ModelRequestStart(scope, session);
                ModelRequestEnd(scope, session, start);
                EndTurn(scope, session, loop, new StopReason { Type = StopReasons.Refusal }, refusal);
                StartQueuedTurn(scope, session, loop);
                return;
            }

            if (step.Error is { } error)
            {
                scope.Emit(session.Id, new SessionEvent { Type = EventTypes.SessionError, Error = error });
                EndTurn(scope, session, loop, new StopReason { Type = StopReasons.RetriesExhausted });
                StartQueuedTurn(scope, session, loop);
                return;
            }

            if (step.Message is { } message)
            {
                var start = ModelRequestStart(scope, session);
                scope.Emit(session.Id, new SessionEvent
                {
                    Type = EventTypes.AgentMessage,
                    Content = [ContentBlock.FromText(Scenario.Render(message, loop.Results, session.Id))],
                });
                ModelRequestEnd(scope, session, start);
                loop.Step++;
                continue;
            }

            var requestStart = ModelRequestStart(scope, session);
            var input = Scenario.RenderInput(step.Input, loop.Results, session.Id);
            if (step.Custom)
            {
                var use = scope.Emit(session.Id, new SessionEvent { Type = EventTypes.AgentCustomToolUse, Name = step.Tool, Input = input });
                ModelRequestEnd(scope, session, requestStart);
                loop.Awaiting = use.Id;
                loop.AwaitingCustom = true;
                GoIdle(scope, session, new StopReason { Type = "requires_action", EventIds = [use.Id!] });
                return;
            }

            var permission = step.Permission ?? ToolPermissions.Evaluate(session.Agent, step.Tool!);
            var toolUse = scope.Emit(session.Id, new SessionEvent
            {
                Type = EventTypes.AgentToolUse,
                Name = step.Tool,
                Input = input,
                EvaluatedPermission = permission,
            });
            ModelRequestEnd(scope, session, requestStart);
            if (permission == "deny")
            {
                loop.Results.Add(new StepResult { Text = $"Permission to use {step.Tool} has been denied.", IsError = true });
                loop.Step++;
                continue;
            }

            loop.Awaiting = toolUse.Id;
            loop.AwaitingCustom = false;
            loop.AwaitingConfirmation = permission == "ask";
            GoIdle(scope, session, new StopReason { Type = "requires_action", EventIds = [toolUse.Id!] });
            return;
        }
    }

    private bool TryGetTurn(WriteScope scope, Session session, LoopState loop, out IReadOnlyList<ScenarioStep> steps)
    {
        steps = [];
        var model = ModelId(session.Agent.Model);
        string? problem;
        if (!model.StartsWith(ScriptedPrefix, StringComparison.Ordinal))
        {
            problem = $"No model provider is configured in the local control plane, so model '{model}' cannot run. " +
                      $"Use a scripted agent (model \"{ScriptedPrefix}NAME\", playing scenario NAME) or run against Anthropic's service.";
        }
        else
        {
            try
            {
                var scenario = scenarios.Get(model[ScriptedPrefix.Length..]);
                if (loop.NextTurn < scenario.Turns.Count)
                {
                    steps = scenario.Turns[loop.NextTurn];
                    return true;
                }

                problem = $"Scenario '{scenario.Name}' has {scenario.Turns.Count} turn{(scenario.Turns.Count == 1 ? "" : "s")}; " +
                          $"this message asked for turn {loop.NextTurn + 1}.";
            }
            catch (ScenarioException ex)
            {
                problem = ex.Message;
            }
        }

        scope.Emit(session.Id, new SessionEvent
        {
            Type = EventTypes.SessionError,
            Error = JsonSerializer.SerializeToElement(new Dictionary<string, JsonElement>
            {
                ["type"] = JsonSerializer.SerializeToElement("model_request_failed_error", ProtocolJsonContext.Default.String),
                ["message"] = JsonSerializer.SerializeToElement(problem, ProtocolJsonContext.Default.String),
                ["retry_status"] = JsonSerializer.SerializeToElement(new Dictionary<string, JsonElement>
                {
                    ["type"] = JsonSerializer.SerializeToElement("exhausted", ProtocolJsonContext.Default.String),
                }, ProtocolJsonContext.Default.DictionaryStringJsonElement),
            }, ProtocolJsonContext.Default.DictionaryStringJsonElement),
        });
        loop.QueuedMessages = 0;
        EndTurn(scope, session, loop, new StopReason { Type = "retries_exhausted" });
        return false;
    }

    private void StartQueuedTurn(WriteScope scope, Session session, LoopState loop)
    {
        if (loop.QueuedMessages > 0)
        {
            loop.QueuedMessages--;
            StartTurn(scope, session, loop);
        }
    }

    private static void EndTurn(WriteScope scope, Session session, LoopState loop, StopReason reason, JsonElement? stopDetails = null)
    {
        loop.InTurn = false;
        loop.Awaiting = null;
        loop.NextTurn++;
        GoIdle(scope, session, reason, stopDetails);
    }

    private static readonly JsonElement NoStopDetails = JsonDocument.Parse("null").RootElement.Clone();

    private static void GoIdle(WriteScope scope, Session session, StopReason reason, JsonElement? stopDetails = null)
    {
        scope.Emit(session.Id, new SessionEvent
        {
            Type = EventTypes.SessionUsage,
            Extra = new Dictionary<string, JsonElement>
            {
                ["usage"] = JsonSerializer.SerializeToElement(session.Usage, ProtocolJsonContext.Default.SessionUsage),
            },
        });
        // As the service (SDK 1.14.0): every idle event carries stop_details, null unless a refusal fills it.
        scope.Emit(session.Id, new SessionEvent { Type = EventTypes.StatusIdle, StopReason = reason, StopDetails = stopDetails ?? NoStopDetails });
        session.Status = SessionStatus.Idle;
        session.UpdatedAt = scope.NowText;
        scope.Webhook("session.status_idled", session.Id);
    }

    private static void SetRunning(WriteScope scope, Session session)
    {
        if (session.Status == SessionStatus.Running)
        {
            return;
        }

        scope.Emit(session.Id, new SessionEvent { Type = EventTypes.StatusRunning });
        session.Status = SessionStatus.Running;
        session.UpdatedAt = scope.NowText;
        scope.Webhook("session.status_run_started", session.Id);
    }

    private static string ModelRequestStart(WriteScope scope, Session session) =>
        scope.Emit(session.Id, new SessionEvent { Type = EventTypes.ModelRequestStart }).Id!;

    private static void ModelRequestEnd(WriteScope scope, Session session, string startId) =>
        scope.Emit(session.Id, new SessionEvent
        {
            Type = EventTypes.ModelRequestEnd,
            IsError = false,
            Extra = new Dictionary<string, JsonElement>
            {
                ["model_request_start_id"] = JsonSerializer.SerializeToElement(startId, ProtocolJsonContext.Default.String),
                ["model_usage"] = JsonSerializer.SerializeToElement(new SessionUsage(), ProtocolJsonContext.Default.SessionUsage),
            },
        });

    public static string ModelId(JsonElement model) => model.ValueKind switch
    {
        JsonValueKind.String => model.GetString() ?? "",
        JsonValueKind.Object when model.TryGetProperty("id", out var id) => id.GetString() ?? "",
        _ => "",
    };

    private static string TextOf(List<ContentBlock>? content) =>
        content is null ? "" : string.Join("\n", content.Where(b => b.Type == "text" && b.Text is not null).Select(b => b.Text));
}
