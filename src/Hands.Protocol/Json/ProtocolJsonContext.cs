using System.Text.Json;
using System.Text.Json.Serialization;
using Hands.Protocol.Models;

namespace Hands.Protocol.Json;

/// <summary>Source-generated JSON metadata for every wire type (trim- and NativeAOT-safe).</summary>
[JsonSourceGenerationOptions(
    GenerationMode = JsonSourceGenerationMode.Default,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    PropertyNameCaseInsensitive = false,
    AllowOutOfOrderMetadataProperties = true)]
[JsonSerializable(typeof(ErrorEnvelope))]
[JsonSerializable(typeof(DeletedResource))]
[JsonSerializable(typeof(AgentEnvironment))]
[JsonSerializable(typeof(Page<AgentEnvironment>))]
[JsonSerializable(typeof(CreateEnvironmentRequest))]
[JsonSerializable(typeof(EnvironmentKey))]
[JsonSerializable(typeof(Agent))]
[JsonSerializable(typeof(Page<Agent>))]
[JsonSerializable(typeof(CreateAgentRequest))]
[JsonSerializable(typeof(Session))]
[JsonSerializable(typeof(Page<Session>))]
[JsonSerializable(typeof(CreateSessionRequest))]
[JsonSerializable(typeof(SessionEvent))]
[JsonSerializable(typeof(SessionEventList))]
[JsonSerializable(typeof(Page<SessionEvent>))]
[JsonSerializable(typeof(WorkItem))]
[JsonSerializable(typeof(Page<WorkItem>))]
[JsonSerializable(typeof(WorkHeartbeat))]
[JsonSerializable(typeof(HeartbeatPreconditionDetails))]
[JsonSerializable(typeof(WorkQueueStats))]
[JsonSerializable(typeof(StopWorkRequest))]
[JsonSerializable(typeof(UpdateWorkRequest))]
[JsonSerializable(typeof(WorkSecret))]
[JsonSerializable(typeof(Skill))]
[JsonSerializable(typeof(Page<Skill>))]
[JsonSerializable(typeof(SkillVersion))]
[JsonSerializable(typeof(Page<SkillVersion>))]
[JsonSerializable(typeof(WebhookEvent))]
[JsonSerializable(typeof(WebhookEndpoint))]
[JsonSerializable(typeof(Page<WebhookEndpoint>))]
[JsonSerializable(typeof(CreateWebhookEndpointRequest))]
[JsonSerializable(typeof(MemoryStore))]
[JsonSerializable(typeof(Page<MemoryStore>))]
[JsonSerializable(typeof(MemoryStoreRequest))]
[JsonSerializable(typeof(Memory))]
[JsonSerializable(typeof(Page<Memory>))]
[JsonSerializable(typeof(Page<JsonElement>))]
[JsonSerializable(typeof(MemoryWriteRequest))]
[JsonSerializable(typeof(MemoryVersion))]
[JsonSerializable(typeof(Page<MemoryVersion>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
[JsonSerializable(typeof(SessionUsage))]
public sealed partial class ProtocolJsonContext : JsonSerializerContext;
