using System.Diagnostics;
using Hands.Common;

namespace Hands.Protocol.Client;

/// <summary>
/// One API method as its span describes it, as the official SDK declares it (<c>startApiCallSpan</c>): the span's name,
/// the route template (<c>http.route</c>), the attributes of the ids in its path (in path order), and the query
/// parameters the API defines for it (only those are recorded in <c>url.query</c>).
/// </summary>
internal sealed class ApiEndpoint(string spanName, string route, string[]? idAttributes = null, string[]? queryParams = null)
{
    public string SpanName { get; } = spanName;
    public string Route { get; } = route;
    public string[] IdAttributes { get; } = idAttributes ?? [];
    public string[] QueryParams { get; } = queryParams ?? [];
}

/// <summary>
/// One call of an <see cref="ApiEndpoint"/>: the ids of its path (in the endpoint's order), and what else its span
/// starts with (the SDK's per-request <c>conversationId</c>, attributes a method reads from its request body).
/// </summary>
internal readonly struct ApiCall(ApiEndpoint endpoint, string? id1 = null, string? id2 = null)
{
    public ApiEndpoint Endpoint { get; } = endpoint;
    public string? Id1 { get; } = id1;
    public string? Id2 { get; } = id2;
    public string? ConversationId { get; init; }
    public IReadOnlyList<KeyValuePair<string, object?>>? Attributes { get; init; }

    public static implicit operator ApiCall(ApiEndpoint endpoint) => new(endpoint);
}

/// <summary>
/// The CLIENT span of one API call, covering every attempt (retries included) and, for a body read later, the read:
/// the official SDK's call span (<c>internal/tracing.ts</c>), attribute for attribute. Null when tracing is off or
/// nobody listens, so an untraced call pays one check. Headers, bodies and the credential are never recorded.
/// </summary>
internal sealed class ApiCallSpan
{
    // Query parameters whose value is content wherever they appear (the SDK's CONTENT_QUERY_PARAMS): a query holding
    // one is recorded only in content mode. None of the endpoints Hands calls defines one today.
    private static readonly string[] ContentQueryParams = ["email", "path_prefix", "expected_content_sha256"];

    private static readonly (string Attribute, string Header)[] ResponseHeaderAttributes =
    [
        ("anthropic.request.id", "request-id"),
        ("anthropic.organization.id", "anthropic-organization-id"),
        ("anthropic.workspace.id", "anthropic-workspace-id"),
    ];

    private readonly Activity _activity;
    private readonly ApiEndpoint _endpoint;
    private readonly ManagedAgentsTracingOptions _tracing;
    private int _attempts;
    private int _ended;

    private ApiCallSpan(Activity activity, ApiEndpoint endpoint, ManagedAgentsTracingOptions tracing)
    {
        _activity = activity;
        _endpoint = endpoint;
        _tracing = tracing;
    }

    /// <summary>The span's activity (for tests and for code that parents work under the call).</summary>
    public Activity Activity => _activity;

    /// <summary>
    /// Starts the call's span as a child of the current activity, with the attributes a sampler may decide on; null
    /// when tracing is off, nobody listens, or the sampler drops it.
    /// </summary>
    public static ApiCallSpan? Start(in ApiCall call, ManagedAgentsClientOptions options)
    {
        var tracing = options.Tracing;
        if (!tracing.Enabled || !HandsTelemetry.Source.HasListeners())
        {
            return null;
        }

        var endpoint = call.Endpoint;
        var baseUrl = options.BaseUrl;
        var tags = new List<KeyValuePair<string, object?>>(10)
        {
            new("gen_ai.provider.name", HandsTelemetry.ProviderName),
            // server.* describe the base URL, not each request's URL; an IPv6 literal is the bare address.
            new("server.address", baseUrl.HostNameType == UriHostNameType.IPv6 ? baseUrl.Host.Trim('[', ']') : baseUrl.IdnHost),
            new("server.port", baseUrl.Port > 0 ? baseUrl.Port : baseUrl.Scheme == Uri.UriSchemeHttp ? 80 : 443),
        };
        string? threadId = null;
        for (var i = 0; i < endpoint.IdAttributes.Length; i++)
        {
            if (endpoint.IdAttributes[i] == "anthropic.session.thread.id")
            {
                threadId = i == 0 ? call.Id1 : call.Id2;
            }
        }

        // A Session thread is a conversation, so its id in the path stands in for one the caller did not give.
        if ((call.ConversationId ?? threadId) is { } conversation)
        {
            tags.Add(new("gen_ai.conversation.id", conversation));
        }

        tags.Add(new("http.route", endpoint.Route));
        if (call.Attributes is { } attributes)
        {
            tags.AddRange(attributes);
        }

        for (var i = 0; i < endpoint.IdAttributes.Length && i < 2; i++)
        {
            if ((i == 0 ? call.Id1 : call.Id2) is { } id)
            {
                tags.Add(new(endpoint.IdAttributes[i], id));
            }
        }

        var activity = HandsTelemetry.Source.StartActivity(endpoint.SpanName, ActivityKind.Client, default(ActivityContext), tags);
        return activity is null ? null : new ApiCallSpan(activity, endpoint, tracing);
    }

    /// <summary>
    /// An attempt is about to be sent. The first gives the span <c>http.request.method</c> and <c>url.*</c>; each later
    /// one counts in <c>http.request.resend_count</c>. Every attempt carries the span's trace context, unless
    /// propagation is off.
    /// </summary>
    public void RecordAttempt(HttpRequestMessage request)
    {
        var attempts = Interlocked.Increment(ref _attempts);
        if (attempts > 1)
        {
            _activity.SetTag("http.request.resend_count", attempts - 1);
        }
        else if (request.RequestUri is { } uri)
        {
            _activity.SetTag("http.request.method", request.Method.Method);
            _activity.SetTag("url.scheme", uri.Scheme);
            _activity.SetTag("url.path", uri.AbsolutePath);
            var query = DefinedQuery(uri.GetComponents(UriComponents.Query, UriFormat.UriEscaped), _endpoint.QueryParams, out var isContent);
            if (!isContent || _tracing.RecordContent)
            {
                if (query is not null)
                {
                    _activity.SetTag("url.query", query);
                }

                // With the recorded query, not the one sent.
                _activity.SetTag("url.full", $"{uri.Scheme}://{uri.Authority}{uri.AbsolutePath}{(query is null ? "" : "?" + query)}");
            }
        }

        if (_tracing.Propagation)
        {
            // The process-wide propagator (W3C traceparent/tracestate by default), as the SDK uses the global one.
            DistributedContextPropagator.Current.Inject(_activity, request, static (carrier, name, value) =>
            {
                var headers = ((HttpRequestMessage)carrier!).Headers;
                headers.Remove(name);
                headers.TryAddWithoutValidation(name, value);
            });
        }
    }

    /// <summary>The call's final response arrived (success or error): its status code and id headers.</summary>
    public void RecordResponse(HttpResponseMessage response)
    {
        _activity.SetTag("http.response.status_code", (int)response.StatusCode);
        foreach (var (attribute, header) in ResponseHeaderAttributes)
        {
            if (response.Headers.TryGetValues(header, out var values) && values.FirstOrDefault() is { Length: > 0 } value)
            {
                _activity.SetTag(attribute, value);
            }
        }
    }

    /// <summary>The call succeeded: status OK, with the attributes its parsed response gives (a create's new id).</summary>
    public void Succeed(IEnumerable<KeyValuePair<string, object?>>? responseAttributes = null)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        if (responseAttributes is not null)
        {
            foreach (var (key, value) in responseAttributes)
            {
                _activity.SetTag(key, value);
            }
        }

        _activity.SetStatus(ActivityStatusCode.Ok);
        _activity.Stop();
    }

    /// <summary>
    /// The call failed with <paramref name="error"/>: status ERROR with <c>error.type</c>, except that a cancellation
    /// (the caller's, or the stream being closed) is not a failure and leaves the status unset.
    /// </summary>
    public void Fail(Exception error)
    {
        if (Interlocked.Exchange(ref _ended, 1) != 0)
        {
            return;
        }

        if (error is ManagedAgentsException { Status: > 0 } api && _activity.GetTagItem("http.response.status_code") is null)
        {
            _activity.SetTag("http.response.status_code", api.Status);
        }

        if (error is not OperationCanceledException)
        {
            _activity.SetStatus(ActivityStatusCode.Error);
            _activity.SetTag("error.type", TraceErrorType.Of(error));
        }

        _activity.Stop();
    }

    /// <summary>
    /// Ends the span without a status: an SSE stream the server ended (it has no end event, so its end is not OK), or a
    /// call cancelled. Does nothing once the span ended.
    /// </summary>
    public void End()
    {
        if (Interlocked.Exchange(ref _ended, 1) == 0)
        {
            _activity.Stop();
        }
    }

    /// <summary>
    /// The parts of <paramref name="query"/> (as sent) whose parameter <paramref name="defined"/> names, in order, or
    /// null when there is none. A part's parameter is its decoded name, or that name without a final <c>[]</c> (how an
    /// array is sent). <paramref name="isContent"/> says whether one of them is a content parameter.
    /// </summary>
    internal static string? DefinedQuery(string query, string[] defined, out bool isContent)
    {
        isContent = false;
        if (query.Length == 0 || defined.Length == 0)
        {
            return null;
        }

        var kept = new List<string>();
        foreach (var part in query.Split('&'))
        {
            var equals = part.IndexOf('=', StringComparison.Ordinal);
            string name;
            try
            {
                name = Uri.UnescapeDataString(equals < 0 ? part : part[..equals]);
            }
            catch (UriFormatException)
            {
                continue;
            }

            var param = defined.Contains(name) || !name.EndsWith("[]", StringComparison.Ordinal) ? name : name[..^2];
            if (!defined.Contains(param))
            {
                continue;
            }

            isContent |= ContentQueryParams.Contains(param);
            kept.Add(part);
        }

        return kept.Count == 0 ? null : string.Join('&', kept);
    }
}
