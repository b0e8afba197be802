using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Sandboxes.Models;

/// <summary>Source-generated JSON for the Tensorlake wire types. Nulls are not written: older servers reject unknown or null fields.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(CreateSandboxRequest))]
[JsonSerializable(typeof(CreateSandboxResponse))]
[JsonSerializable(typeof(SandboxInfo))]
[JsonSerializable(typeof(SandboxPage))]
[JsonSerializable(typeof(NetworkPolicy))]
[JsonSerializable(typeof(CreateSnapshotResponse))]
[JsonSerializable(typeof(SnapshotInfo))]
[JsonSerializable(typeof(SnapshotList))]
[JsonSerializable(typeof(StartProcessRequest))]
[JsonSerializable(typeof(RunProcessRequest))]
[JsonSerializable(typeof(ProcessInfo))]
[JsonSerializable(typeof(ProcessList))]
[JsonSerializable(typeof(ProcessOutput))]
[JsonSerializable(typeof(ProcessEvent))]
[JsonSerializable(typeof(DirectoryListing))]
[JsonSerializable(typeof(ProxyError))]
[JsonSerializable(typeof(SandboxPoolRequest))]
[JsonSerializable(typeof(CreateSandboxPoolResponse))]
[JsonSerializable(typeof(SandboxPoolInfo))]
[JsonSerializable(typeof(SandboxPoolList))]
[JsonSerializable(typeof(NetworkEventsResponse))]
[JsonSerializable(typeof(NetworkDestinationsResponse))]
[JsonSerializable(typeof(NetworkCaptureStatus))]
[JsonSerializable(typeof(NetworkEvent))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(Dictionary<string, JsonElement>))]
[JsonSerializable(typeof(List<int>))]
[JsonSerializable(typeof(JsonElement))]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(bool))]
[JsonSerializable(typeof(int))]
public sealed partial class SandboxesJsonContext : JsonSerializerContext;
