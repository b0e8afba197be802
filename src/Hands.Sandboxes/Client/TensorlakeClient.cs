using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Client;

/// <summary>
/// Client of the Tensorlake Sandboxes lifecycle API (create, get, list, update, delete, suspend, resume, snapshots,
/// warm pools and claims), against Tensorlake's cloud or a local engine; <see cref="Proxy(SandboxInfo)"/> reaches a
/// sandbox's processes and files. Non-idempotent calls (create, snapshot, suspend, resume, pool create, claim) are never
/// retried automatically.
/// </summary>
public sealed partial class TensorlakeClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly HttpClient _proxyHttp;
    private readonly TensorlakeTransport _lifecycle;
    private readonly TensorlakeTransport _proxy;
    private readonly string _base;

    public TensorlakeClient(TensorlakeClientOptions? options = null)
    {
        Options = options ?? TensorlakeClientOptions.FromEnvironment();
        // The HttpClients have no timeout of their own: each try's timeout runs on Options.TimeProvider in the transport.
        // The transport sends its call span's context itself: the handler's own propagation would replace it with a
        // span of the handler's, which no exporter sends, and break the caller -> engine link in the trace.
        _http = Options.Handler is null ? new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null }) : new HttpClient(Options.Handler, disposeHandler: false);
        _http.Timeout = Timeout.InfiniteTimeSpan;
        _proxyHttp = Options.Handler is null ? new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null }) : new HttpClient(Options.Handler, disposeHandler: false);
        _proxyHttp.Timeout = Timeout.InfiniteTimeSpan;
        _lifecycle = new TensorlakeTransport(_http, Options, Options.LifecycleTimeout);
        _proxy = new TensorlakeTransport(_proxyHttp, Options, defaultTimeout: null);
        _base = Options.ResolveLifecycleBase();
    }

    public TensorlakeClientOptions Options { get; }

    private static string Id(string idOrName) => Uri.EscapeDataString(idOrName);

    /// <summary>Creates a sandbox (or restores one from <see cref="CreateSandboxRequest.SnapshotId"/>). A 504 with a JSON body is an answer (<c>status: timeout</c>), not an error.</summary>
    public Task<CreateSandboxResponse> CreateAsync(CreateSandboxRequest request, CancellationToken cancellationToken = default) =>
        _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandboxes", TensorlakeTransport.Json(request, SandboxesJsonContext.Default.CreateSandboxRequest),
            idempotent: false, SandboxesJsonContext.Default.CreateSandboxResponse, cancellationToken, acceptAlso: HttpStatusCode.GatewayTimeout);

    /// <summary>A sandbox by id or name.</summary>
    public Task<SandboxInfo> GetAsync(string idOrName, CancellationToken cancellationToken = default) =>
        _lifecycle.JsonAsync(HttpMethod.Get, $"{_base}/sandboxes/{Id(idOrName)}", null, idempotent: true,
            SandboxesJsonContext.Default.SandboxInfo, cancellationToken);

    /// <summary>One page; <paramref name="status"/> <c>running</c> lists only the live set (otherwise terminated ones are included).</summary>
    public Task<SandboxPage> ListAsync(int? limit = null, string? cursor = null, string? status = null, CancellationToken cancellationToken = default)
    {
        var query = new List<string>();
        if (limit is { } l)
        {
            query.Add("limit=" + l.ToString(CultureInfo.InvariantCulture));
        }

        if (cursor is not null)
        {
            query.Add("cursor=" + Uri.EscapeDataString(cursor));
        }

        if (status is not null)
        {
            query.Add("status=" + Uri.EscapeDataString(status));
        }

        var url = $"{_base}/sandboxes" + (query.Count > 0 ? "?" + string.Join('&', query) : "");
        return _lifecycle.JsonAsync(HttpMethod.Get, url, null, idempotent: true, SandboxesJsonContext.Default.SandboxPage, cancellationToken);
    }

    /// <summary>Every page, following <c>next_cursor</c> (at most 10,000 pages).</summary>
    public async IAsyncEnumerable<SandboxInfo> ListAllAsync(string? status = null, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? cursor = null;
        for (var page = 0; page < 10_000; page++)
        {
            var result = await ListAsync(100, cursor, status, cancellationToken).ConfigureAwait(false);
            foreach (var sandbox in result.Data)
            {
                yield return sandbox;
            }

            if (string.IsNullOrEmpty(result.NextCursor) || result.NextCursor == cursor || result.Data.Count == 0)
            {
                yield break;
            }

            cursor = result.NextCursor;
        }
    }

    /// <summary>Updates name, port exposure and egress policy (<c>network</c>: omitted keeps, null clears, object replaces).</summary>
    public Task<SandboxInfo> UpdateAsync(string idOrName, UpdateSandboxRequest update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        foreach (var port in update.ExposedPorts ?? [])
        {
            if (port is < 1 or > 65535 or 9501)
            {
                throw new ArgumentException($"exposed port {port} is invalid: ports are 1-65535 and 9501 is the management API", nameof(update));
            }
        }

        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (update.Name is not null)
            {
                w.WriteString("name", update.Name);
            }

            if (update.AllowUnauthenticatedAccess is { } open)
            {
                w.WriteBoolean("allow_unauthenticated_access", open);
            }

            if (update.ExposedPorts is not null)
            {
                w.WritePropertyName("exposed_ports");
                JsonSerializer.Serialize(w, update.ExposedPorts.Distinct().Order().ToList(), SandboxesJsonContext.Default.ListInt32);
            }

            if (update.HostPortRoutes is { } routes)
            {
                w.WriteStartObject("host_port_routes");
                foreach (var (port, allowed) in routes)
                {
                    w.WriteStartArray(port.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    foreach (var route in allowed)
                    {
                        w.WriteStringValue(route);
                    }

                    w.WriteEndArray();
                }

                w.WriteEndObject();
            }

            if (update.ClearNetwork)
            {
                w.WriteNull("network");
            }
            else if (update.Network is not null)
            {
                w.WritePropertyName("network");
                JsonSerializer.Serialize(w, update.Network, SandboxesJsonContext.Default.NetworkPolicy);
            }

            w.WriteEndObject();
        }

        var content = new ByteArrayContent(buffer.ToArray());
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return _lifecycle.JsonAsync(HttpMethod.Patch, $"{_base}/sandboxes/{Id(idOrName)}", content, idempotent: true,
            SandboxesJsonContext.Default.SandboxInfo, cancellationToken);
    }

    /// <summary>
    /// Live resize (<c>PATCH</c> with <c>resources</c> alone): whole CPUs, memory in MiB, a disk that only grows; null
    /// keeps a value. The answer's <see cref="SandboxInfo.ResourceResize"/> says how it went (<c>pending</c> on
    /// Tensorlake's cloud: <see cref="WaitForResourceResizeAsync"/>), and <see cref="SandboxInfo.Resources"/> what is in force.
    /// </summary>
    public Task<SandboxInfo> ResizeAsync(string idOrName, int? cpus = null, int? memoryMb = null, int? diskMb = null, CancellationToken cancellationToken = default)
    {
        if (cpus is null && memoryMb is null && diskMb is null)
        {
            throw new ArgumentException("a resize needs at least one of cpus, memory_mb, disk_mb");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(cpus ?? 1, 1, nameof(cpus));
        ArgumentOutOfRangeException.ThrowIfLessThan(memoryMb ?? 1, 1, nameof(memoryMb));
        ArgumentOutOfRangeException.ThrowIfLessThan(diskMb ?? 1, 1, nameof(diskMb));
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("resources");
            if (cpus is { } c)
            {
                w.WriteNumber("cpus", c);
            }

            if (memoryMb is { } m)
            {
                w.WriteNumber("memory_mb", m);
            }

            if (diskMb is { } d)
            {
                w.WriteNumber("disk_mb", d);
            }

            w.WriteEndObject();
            w.WriteEndObject();
        }

        var content = new ByteArrayContent(buffer.ToArray());
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        // Not retried: a second try of a resize whose answer was lost would be a new generation.
        return _lifecycle.JsonAsync(HttpMethod.Patch, $"{_base}/sandboxes/{Id(idOrName)}", content, idempotent: false,
            SandboxesJsonContext.Default.SandboxInfo, cancellationToken);
    }

    /// <summary>Polls until resize <paramref name="generation"/> is no longer <c>pending</c> (or a later one superseded it), on <see cref="TensorlakeClientOptions.TimeProvider"/>.</summary>
    /// <exception cref="TensorlakeTimeoutException">It was still pending after <paramref name="timeout"/>.</exception>
    public async Task<SandboxInfo> WaitForResourceResizeAsync(string idOrName, int generation, TimeSpan timeout, TimeSpan? poll = null, CancellationToken cancellationToken = default)
    {
        using var deadline = new CancellationTokenSource(timeout, Options.TimeProvider);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            while (true)
            {
                var info = await GetAsync(idOrName, cts.Token).ConfigureAwait(false);
                if (info.ResourceResize is not { } resize || resize.Generation > generation || resize.Status != "pending")
                {
                    return info;
                }

                await Task.Delay(poll ?? TimeSpan.FromSeconds(1), Options.TimeProvider, cts.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException ex) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new TensorlakeTimeoutException($"resize {generation} of sandbox {idOrName} was still pending after {timeout.TotalSeconds:0} s", null, ex);
        }
    }

    /// <summary>Terminates a sandbox; terminating a terminated one succeeds.</summary>
    public async Task DeleteAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        using var _ = await _lifecycle.SendAsync(HttpMethod.Delete, $"{_base}/sandboxes/{Id(idOrName)}", null, idempotent: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Suspends a named sandbox: true when it started now (202), false when it already was suspended (200).
    /// <paramref name="hibernate"/> is a Hands engine extension (<c>?hibernate=true</c>: straight to disk with CRIU);
    /// it is sent only when true, so the cloud never sees it.
    /// </summary>
    public async Task<bool> SuspendAsync(string idOrName, bool hibernate = false, CancellationToken cancellationToken = default)
    {
        var query = hibernate ? "?hibernate=true" : "";
        using var response = await _lifecycle.SendAsync(HttpMethod.Post, $"{_base}/sandboxes/{Id(idOrName)}/suspend{query}", null, idempotent: false, cancellationToken).ConfigureAwait(false);
        return response.StatusCode == HttpStatusCode.Accepted;
    }

    /// <summary>Resumes a suspended sandbox: true when it started now (202), false when it already was running (200).</summary>
    public async Task<bool> ResumeAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        using var response = await _lifecycle.SendAsync(HttpMethod.Post, $"{_base}/sandboxes/{Id(idOrName)}/resume", null, idempotent: false, cancellationToken).ConfigureAwait(false);
        return response.StatusCode == HttpStatusCode.Accepted;
    }

    /// <summary>
    /// Registers a filesystem snapshot as an image (Tensorlake's API-key-scoped <c>POST {api}/platform/v1/sandbox-templates</c>,
    /// camelCase body); sandboxes then launch with <c>image: name</c>. The Dockerfile carries the image's ENV and WORKDIR.
    /// </summary>
    public async Task RegisterImageAsync(string name, string snapshotId, string dockerfile, CancellationToken cancellationToken = default)
    {
        var body = new Dictionary<string, JsonElement>
        {
            ["name"] = JsonSerializer.SerializeToElement(name, SandboxesJsonContext.Default.String),
            ["dockerfile"] = JsonSerializer.SerializeToElement(dockerfile, SandboxesJsonContext.Default.String),
            ["snapshotId"] = JsonSerializer.SerializeToElement(snapshotId, SandboxesJsonContext.Default.String),
            ["public"] = JsonSerializer.SerializeToElement(false, SandboxesJsonContext.Default.Boolean),
        };
        using var _ = await _lifecycle.SendAsync(HttpMethod.Post, $"{Options.ApiUrl.ToString().TrimEnd('/')}/platform/v1/sandbox-templates",
            TensorlakeTransport.Json(body, SandboxesJsonContext.Default.DictionaryStringJsonElement), idempotent: false, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Hands engine extension: opens a loopback TCP relay to an exposed port that does not speak HTTP and returns its
    /// <c>host:port</c>. Connecting wakes a suspended sandbox. Tensorlake's cloud uses WebSocket tunnels instead.
    /// </summary>
    public async Task<string> OpenTcpRelayAsync(string idOrName, int port, CancellationToken cancellationToken = default)
    {
        var body = new Dictionary<string, JsonElement> { ["port"] = JsonSerializer.SerializeToElement(port, SandboxesJsonContext.Default.Int32) };
        var answer = await _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandboxes/{Id(idOrName)}/tcp-relays",
            TensorlakeTransport.Json(body, SandboxesJsonContext.Default.DictionaryStringJsonElement), idempotent: false,
            SandboxesJsonContext.Default.DictionaryStringJsonElement, cancellationToken).ConfigureAwait(false);
        return answer.TryGetValue("address", out var address) ? address.GetString() ?? "" : throw new TensorlakeException(0, null, "the relay answer had no address", null);
    }

    /// <summary>
    /// Hands engine extension: a key that may fork <paramref name="idOrName"/> and nothing else (snapshot it, create
    /// children from its snapshots, run commands in them, delete them). It dies with the sandbox. Tensorlake's cloud
    /// has no such scope; there this answers 404.
    /// </summary>
    public async Task<string> CreateForkKeyAsync(string idOrName, CancellationToken cancellationToken = default)
    {
        var answer = await _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandboxes/{Id(idOrName)}/fork-keys", null, idempotent: false,
            SandboxesJsonContext.Default.DictionaryStringJsonElement, cancellationToken).ConfigureAwait(false);
        return answer.TryGetValue("key", out var key) && key.GetString() is { Length: > 0 } value ? value : throw new TensorlakeException(0, null, "the fork-key answer had no key", null);
    }

    /// <summary>Deletes a registered image (its snapshot stays until deleted on its own).</summary>
    public async Task DeleteImageAsync(string name, CancellationToken cancellationToken = default)
    {
        using var _ = await _lifecycle.SendAsync(HttpMethod.Delete, $"{Options.ApiUrl.ToString().TrimEnd('/')}/platform/v1/sandbox-templates/{Uri.EscapeDataString(name)}",
            null, idempotent: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Starts a snapshot. With no <paramref name="snapshotType"/> no body is sent (the server's default, filesystem).</summary>
    public Task<CreateSnapshotResponse> SnapshotAsync(string idOrName, string? snapshotType = null, CancellationToken cancellationToken = default)
    {
        HttpContent? body = null;
        if (snapshotType is not null)
        {
            if (snapshotType is not (SnapshotType.Filesystem or SnapshotType.Memory))
            {
                throw new ArgumentException("snapshot type is 'filesystem' or 'memory'", nameof(snapshotType));
            }

            body = new StringContent($"{{\"snapshot_type\":\"{snapshotType}\"}}", Encoding.UTF8, "application/json");
        }

        return _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandboxes/{Id(idOrName)}/snapshot", body, idempotent: false,
            SandboxesJsonContext.Default.CreateSnapshotResponse, cancellationToken);
    }

    public Task<SnapshotInfo> GetSnapshotAsync(string snapshotId, CancellationToken cancellationToken = default) =>
        _lifecycle.JsonAsync(HttpMethod.Get, $"{_base}/snapshots/{Id(snapshotId)}", null, idempotent: true, SandboxesJsonContext.Default.SnapshotInfo, cancellationToken);

    public async Task<IReadOnlyList<SnapshotInfo>> ListSnapshotsAsync(CancellationToken cancellationToken = default) =>
        (await _lifecycle.JsonAsync(HttpMethod.Get, $"{_base}/snapshots", null, idempotent: true, SandboxesJsonContext.Default.SnapshotList, cancellationToken).ConfigureAwait(false)).Snapshots;

    public async Task DeleteSnapshotAsync(string snapshotId, CancellationToken cancellationToken = default)
    {
        using var _ = await _lifecycle.SendAsync(HttpMethod.Delete, $"{_base}/snapshots/{Id(snapshotId)}", null, idempotent: true, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Creates a warm pool (<c>POST /sandbox-pools</c>); its sandboxes boot in the background. Never retried automatically.</summary>
    public Task<CreateSandboxPoolResponse> CreatePoolAsync(SandboxPoolRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.ClearNetwork)
        {
            // As the SDK: clearing only means something to an update; a new pool without a policy just omits it.
            throw new ArgumentException("ClearNetwork applies to UpdatePoolAsync only; leave Network null to create a pool without a policy", nameof(request));
        }

        return _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandbox-pools", PoolBody(request), idempotent: false,
            SandboxesJsonContext.Default.CreateSandboxPoolResponse, cancellationToken);
    }

    /// <summary>Every pool of the namespace (without their containers).</summary>
    public async Task<IReadOnlyList<SandboxPoolInfo>> ListPoolsAsync(CancellationToken cancellationToken = default) =>
        (await _lifecycle.JsonAsync(HttpMethod.Get, $"{_base}/sandbox-pools", null, idempotent: true, SandboxesJsonContext.Default.SandboxPoolList,
            cancellationToken).ConfigureAwait(false)).Pools;

    /// <summary>A pool with its containers (warm ones have no <c>sandbox_id</c>).</summary>
    /// <exception cref="PoolNotFoundException">No such pool.</exception>
    public Task<SandboxPoolInfo> GetPoolAsync(string poolId, CancellationToken cancellationToken = default) =>
        PoolCallAsync(poolId, () => _lifecycle.JsonAsync(HttpMethod.Get, $"{_base}/sandbox-pools/{Id(poolId)}", null, idempotent: true,
            SandboxesJsonContext.Default.SandboxPoolInfo, cancellationToken));

    /// <summary>
    /// Replaces a pool's whole configuration (<c>PUT</c>). The network policy: <see cref="SandboxPoolRequest.Network"/>
    /// replaces it, <see cref="SandboxPoolRequest.ClearNetwork"/> removes it, neither keeps it — which, as the SDK does,
    /// is sent as the current policy read first, because older services clear a policy the body leaves out. On a change
    /// the provider recycles the warm sandboxes; claimed ones keep what they booted with.
    /// </summary>
    /// <exception cref="PoolNotFoundException">No such pool.</exception>
    public async Task<SandboxPoolInfo> UpdatePoolAsync(string poolId, SandboxPoolRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var body = request;
        if (!request.ClearNetwork && request.Network is null && (await GetPoolAsync(poolId, cancellationToken).ConfigureAwait(false)).EffectiveNetwork is { } current)
        {
            body = new SandboxPoolRequest
            {
                Image = request.Image,
                Resources = request.Resources,
                TimeoutSecs = request.TimeoutSecs,
                Entrypoint = request.Entrypoint,
                MaxContainers = request.MaxContainers,
                WarmContainers = request.WarmContainers,
                Network = current,
            };
        }

        return await PoolCallAsync(poolId, () => _lifecycle.JsonAsync(HttpMethod.Put, $"{_base}/sandbox-pools/{Id(poolId)}", PoolBody(body),
            idempotent: true, SandboxesJsonContext.Default.SandboxPoolInfo, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Deletes a pool and its warm sandboxes.</summary>
    /// <exception cref="PoolNotFoundException">No such pool.</exception>
    /// <exception cref="PoolInUseException">Sandboxes claimed from it still live (409): delete them first.</exception>
    public Task DeletePoolAsync(string poolId, CancellationToken cancellationToken = default) =>
        PoolCallAsync(poolId, async () =>
        {
            using var _ = await _lifecycle.SendAsync(HttpMethod.Delete, $"{_base}/sandbox-pools/{Id(poolId)}", null, idempotent: true, cancellationToken).ConfigureAwait(false);
            return true;
        });

    /// <summary>
    /// Claims a sandbox from a pool (<c>POST /sandbox-pools/{id}/sandboxes</c>, no body, never a name: PATCH one
    /// afterwards). The answer is a create's: usually <c>running</c> at once (a warm one, or one booted for the claim);
    /// from Tensorlake's cloud possibly <c>pending</c> (with <see cref="CreateSandboxResponse.PendingReason"/>
    /// <c>pool_at_capacity</c> while the pool is full) or, on a 504 with a JSON body, <c>timeout</c>. Never retried.
    /// </summary>
    /// <exception cref="PoolNotFoundException">No such pool.</exception>
    /// <exception cref="PoolAtCapacityException">The pool is at <c>max_containers</c> with none warm (the local engine's 429).</exception>
    public Task<CreateSandboxResponse> ClaimAsync(string poolId, CancellationToken cancellationToken = default) =>
        PoolCallAsync(poolId, () => _lifecycle.JsonAsync(HttpMethod.Post, $"{_base}/sandbox-pools/{Id(poolId)}/sandboxes", null, idempotent: false,
            SandboxesJsonContext.Default.CreateSandboxResponse, cancellationToken, acceptAlso: HttpStatusCode.GatewayTimeout));

    /// <summary>A pool call, its 404, 409 and 429 answers as the typed exceptions (the SDK's <c>PoolNotFoundError</c>, <c>PoolInUseError</c>).</summary>
    private static async Task<T> PoolCallAsync<T>(string poolId, Func<Task<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (TensorlakeException ex) when (ex.GetType() == typeof(TensorlakeException) && ex.Status is 404 or 409 or 429)
        {
            throw ex.Status switch
            {
                404 => new PoolNotFoundException(poolId, ex),
                409 => new PoolInUseException(poolId, ex),
                _ => new PoolAtCapacityException(poolId, ex),
            };
        }
    }

    /// <summary>A pool's body as the SDK writes it: nulls left out, but <c>"network": null</c> when the policy is to be cleared.</summary>
    private static ByteArrayContent PoolBody(SandboxPoolRequest request)
    {
        var json = JsonSerializer.SerializeToNode(request, SandboxesJsonContext.Default.SandboxPoolRequest)!.AsObject();
        if (request.ClearNetwork)
        {
            json["network"] = null;
        }

        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(json.ToJsonString()));
        content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        return content;
    }

    /// <summary>
    /// Polls until the sandbox reaches one of <paramref name="statuses"/>, on <see cref="TensorlakeClientOptions.TimeProvider"/>.
    /// </summary>
    /// <exception cref="TensorlakeTimeoutException">It did not within <paramref name="timeout"/>.</exception>
    /// <exception cref="SandboxTerminatedException">It terminated, and <c>terminated</c> was not awaited.</exception>
    public async Task<SandboxInfo> WaitForStatusAsync(string idOrName, IReadOnlyCollection<string> statuses, TimeSpan timeout, TimeSpan? poll = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(statuses);
        // A poll loop, not a retry: each GET is retried by the client's own pipeline; this loop waits for a state.
        using var deadline = new CancellationTokenSource(timeout, Options.TimeProvider);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        string? last = null;
        try
        {
            while (true)
            {
                var info = await GetAsync(idOrName, cts.Token).ConfigureAwait(false);
                last = info.Status;
                if (statuses.Contains(info.Status))
                {
                    return info;
                }

                if (info.Status == SandboxStatus.Terminated)
                {
                    throw new SandboxTerminatedException(idOrName, info.TerminationReason ?? info.ErrorDetails?.GetRawText() ?? "no reason given");
                }

                await Task.Delay(poll ?? TimeSpan.FromMilliseconds(500), Options.TimeProvider, cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested
            && ex is OperationCanceledException or TensorlakeTimeoutException)
        {
            throw new TensorlakeTimeoutException(
                $"sandbox {idOrName} did not reach {string.Join("/", statuses)} within {timeout.TotalSeconds:0} s{(last is null ? "" : $" (last: {last})")}", null, ex);
        }
    }

    /// <summary>Polls a snapshot until it can be restored (<c>local_ready</c> or <c>completed</c>), on <see cref="TensorlakeClientOptions.TimeProvider"/>.</summary>
    /// <exception cref="TensorlakeTimeoutException">It was not within <paramref name="timeout"/>.</exception>
    /// <exception cref="SnapshotFailedException">It failed.</exception>
    public async Task<SnapshotInfo> WaitForSnapshotAsync(string snapshotId, TimeSpan timeout, TimeSpan? poll = null, CancellationToken cancellationToken = default)
    {
        // A poll loop, not a retry: each GET is retried by the client's own pipeline; this loop waits for a state.
        var deadline = Options.TimeProvider.GetUtcNow() + timeout;
        while (true)
        {
            var info = await GetSnapshotAsync(snapshotId, cancellationToken).ConfigureAwait(false);
            if (info.IsRestorable)
            {
                return info;
            }

            if (info.Status == SnapshotStatus.Failed)
            {
                throw new SnapshotFailedException(snapshotId, info.Error ?? "no reason given");
            }

            if (Options.TimeProvider.GetUtcNow() > deadline)
            {
                throw new TensorlakeTimeoutException($"snapshot {snapshotId} was not ready within {timeout.TotalSeconds:0} s", null, null);
            }

            await Task.Delay(poll ?? TimeSpan.FromSeconds(1), Options.TimeProvider, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>A client of the sandbox's own API (processes, files), routed as the SDK routes it.</summary>
    public SandboxProxyClient Proxy(SandboxInfo sandbox)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        return Proxy(sandbox.CanonicalId, sandbox.SandboxUrl, sandbox.RoutingHint);
    }

    /// <inheritdoc cref="Proxy(SandboxInfo)"/>
    public SandboxProxyClient Proxy(CreateSandboxResponse sandbox)
    {
        ArgumentNullException.ThrowIfNull(sandbox);
        return Proxy(sandbox.CanonicalId, sandbox.SandboxUrl, sandbox.RoutingHint);
    }

    private SandboxProxyClient Proxy(string id, string? sandboxUrl, string? routingHint)
    {
        // Always prefer the server's sandbox_url; a sandbox can move between hosts (e.g. after resume).
        var baseUrl = sandboxUrl ?? Options.ProxyUrl?.ToString()
            ?? throw new TensorlakeException(0, "NO_SANDBOX_URL", $"the server's answer for {id} did not include sandbox_url; set a proxy URL (TENSORLAKE_SANDBOX_PROXY_URL) to reach it", null);
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (Options.IsLocal)
        {
            headers["Host"] = $"{id}.local";
        }
        else
        {
            headers["X-Tensorlake-Sandbox-Id"] = id;
        }

        if (!string.IsNullOrEmpty(routingHint))
        {
            headers["X-Tensorlake-Route-Hint"] = routingHint;
        }

        return new SandboxProxyClient(_proxy, baseUrl.TrimEnd('/'), id, headers);
    }

    /// <summary>
    /// The public URL of a port: <c>{scheme}://{port}-{id}.{ingress host}[:ingress port]</c>, or <c>{id}.</c> for the
    /// management port 9501 (IPv6 hosts bracketed, an explicit ingress port kept).
    /// </summary>
    public static Uri PortUrl(string ingressEndpoint, string sandboxId, int? port = null)
    {
        var ingress = new Uri(ingressEndpoint);
        var label = port is null or 9501 ? sandboxId : $"{port.Value.ToString(CultureInfo.InvariantCulture)}-{sandboxId}";
        var host = ingress.HostNameType == UriHostNameType.IPv6 ? $"[{ingress.Host.Trim('[', ']')}]" : ingress.Host;
        var explicitPort = ingress.IsDefaultPort ? "" : ":" + ingress.Port.ToString(CultureInfo.InvariantCulture);
        return new Uri($"{ingress.Scheme}://{label}.{host}{explicitPort}/");
    }

    public void Dispose()
    {
        _http.Dispose();
        _proxyHttp.Dispose();
    }
}
