using System.Text.Json;
using System.Text.Json.Serialization;

namespace Hands.Protocol.Models;

/// <summary>A cursor page as the API returns it: <c>{"data":[...],"next_page":...}</c>.</summary>
public sealed class Page<T>
{
    [JsonPropertyName("data")] public List<T> Data { get; set; } = [];
    [JsonPropertyName("next_page")] public string? NextPage { get; set; }
    /// <summary>Only the session list returns a previous-page cursor.</summary>
    [JsonPropertyName("prev_page")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? PrevPage { get; set; }
}

/// <summary>The API's error envelope: <c>{"type":"error","error":{...},"request_id":"req_..."}</c>.</summary>
public sealed class ErrorEnvelope
{
    [JsonPropertyName("type")] public string Type { get; set; } = "error";
    [JsonPropertyName("error")] public ErrorBody Error { get; set; } = new();
    [JsonPropertyName("request_id")] public string? RequestId { get; set; }
}

/// <summary>The inner error object of <see cref="ErrorEnvelope"/>.</summary>
public sealed class ErrorBody
{
    [JsonPropertyName("type")] public string Type { get; set; } = "api_error";
    [JsonPropertyName("message")] public string Message { get; set; } = "";
    [JsonPropertyName("details")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public JsonElement? Details { get; set; }

    /// <summary><c>memory_path_conflict_error</c>: the path that blocked the write.</summary>
    [JsonPropertyName("conflicting_path")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ConflictingPath { get; set; }

    /// <summary><c>memory_path_conflict_error</c>: the memory holding <see cref="ConflictingPath"/>.</summary>
    [JsonPropertyName("conflicting_memory_id")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ConflictingMemoryId { get; set; }
}

/// <summary>The object returned by a successful delete: <c>{"id":...,"type":"session_deleted"}</c>.</summary>
public sealed class DeletedResource
{
    [JsonPropertyName("id")] public string Id { get; set; } = "";
    [JsonPropertyName("type")] public string Type { get; set; } = "";
}

/// <summary>Well-known error <c>type</c> values and the HTTP status each goes with.</summary>
public static class ErrorTypes
{
    public const string InvalidRequest = "invalid_request_error";
    public const string Authentication = "authentication_error";
    public const string Permission = "permission_error";
    public const string NotFound = "not_found_error";
    public const string Conflict = "conflict_error";
    public const string RequestTooLarge = "request_too_large";
    public const string RateLimit = "rate_limit_error";
    public const string Api = "api_error";
    public const string Overloaded = "overloaded_error";
    public const string PreconditionFailed = "precondition_failed_error";
}
