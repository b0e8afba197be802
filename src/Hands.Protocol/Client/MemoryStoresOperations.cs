using System.Runtime.CompilerServices;
using Hands.Protocol.Json;
using Hands.Protocol.Models;

namespace Hands.Protocol.Client;

/// <summary><c>/v1/memory_stores</c> (beta <c>agent-memory-2026-07-22</c>): stores, their memories and memory versions.</summary>
public sealed class MemoryStoresOperations
{
    private readonly ProtocolPipeline _p;

    internal MemoryStoresOperations(ProtocolPipeline pipeline) => _p = pipeline;

    private static string StorePath(string storeId) => $"/v1/memory_stores/{Query.Escape(storeId)}";

    public Task<MemoryStore> CreateAsync(MemoryStoreRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.MemoryStoresCreate, HttpMethod.Post, "/v1/memory_stores", null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.MemoryStoreRequest),
            ProtocolJsonContext.Default.MemoryStore, cancellationToken, beta: MemoryValues.Beta);

    public Task<MemoryStore> GetAsync(string storeId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryStoresRetrieve, storeId), HttpMethod.Get, StorePath(storeId), null, null, ProtocolJsonContext.Default.MemoryStore, cancellationToken, beta: MemoryValues.Beta);

    public Task<MemoryStore> UpdateAsync(string storeId, MemoryStoreRequest request, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryStoresUpdate, storeId), HttpMethod.Post, StorePath(storeId), null,
            ProtocolPipeline.Serialize(request, ProtocolJsonContext.Default.MemoryStoreRequest),
            ProtocolJsonContext.Default.MemoryStore, cancellationToken, beta: MemoryValues.Beta);

    public Task<Page<MemoryStore>> ListAsync(int? limit = null, string? page = null, bool? includeArchived = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(ApiEndpoints.MemoryStoresList, HttpMethod.Get, "/v1/memory_stores", new Query().With("limit", limit).With("page", page).With("include_archived", includeArchived), null,
            ProtocolJsonContext.Default.PageMemoryStore, cancellationToken, beta: MemoryValues.Beta);

    public Task<MemoryStore> ArchiveAsync(string storeId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryStoresArchive, storeId), HttpMethod.Post, StorePath(storeId) + "/archive", null, null, ProtocolJsonContext.Default.MemoryStore, cancellationToken, beta: MemoryValues.Beta);

    public Task<DeletedResource> DeleteAsync(string storeId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryStoresDelete, storeId), HttpMethod.Delete, StorePath(storeId), null, null, ProtocolJsonContext.Default.DeletedResource, cancellationToken, beta: MemoryValues.Beta);

    /// <summary>One page of memories (and <c>memory_prefix</c> roll-ups when <paramref name="depth"/> is set).</summary>
    public Task<Page<Memory>> ListMemoriesAsync(string storeId, string view = MemoryValues.ViewBasic, int? limit = null, string? page = null,
        string? pathPrefix = null, int? depth = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoriesList, storeId), HttpMethod.Get, StorePath(storeId) + "/memories",
            new Query().With("view", view).With("limit", limit).With("page", page).With("path_prefix", pathPrefix).With("depth", depth), null,
            ProtocolJsonContext.Default.PageMemory, cancellationToken, beta: MemoryValues.Beta);

    /// <summary>Every item of a listing, page after page.</summary>
    public async IAsyncEnumerable<Memory> ListAllMemoriesAsync(string storeId, string view = MemoryValues.ViewBasic, int? limit = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        string? page = null;
        do
        {
            var result = await ListMemoriesAsync(storeId, view, limit, page, cancellationToken: cancellationToken).ConfigureAwait(false);
            foreach (var item in result.Data)
            {
                yield return item;
            }

            page = result.NextPage;
        }
        while (page is not null);
    }

    public Task<Memory> GetMemoryAsync(string storeId, string memoryId, string view = MemoryValues.ViewFull, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoriesRetrieve, storeId, memoryId), HttpMethod.Get, $"{StorePath(storeId)}/memories/{Query.Escape(memoryId)}", new Query().With("view", view), null,
            ProtocolJsonContext.Default.Memory, cancellationToken, beta: MemoryValues.Beta);

    public Task<Memory> CreateMemoryAsync(string storeId, string path, string content, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoriesCreate, storeId), HttpMethod.Post, StorePath(storeId) + "/memories", null,
            ProtocolPipeline.Serialize(new MemoryWriteRequest { Path = path, Content = content }, ProtocolJsonContext.Default.MemoryWriteRequest),
            ProtocolJsonContext.Default.Memory, cancellationToken, beta: MemoryValues.Beta);

    /// <summary>Updates content and/or path; with <paramref name="expectedSha256"/>, only if the stored content still has that hash (else 409).</summary>
    public Task<Memory> UpdateMemoryAsync(string storeId, string memoryId, string? content, string? path = null, string? expectedSha256 = null,
        CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoriesUpdate, storeId, memoryId), HttpMethod.Post, $"{StorePath(storeId)}/memories/{Query.Escape(memoryId)}", null,
            ProtocolPipeline.Serialize(new MemoryWriteRequest
            {
                Content = content,
                Path = path,
                Precondition = expectedSha256 is null ? null : new MemoryPrecondition { ContentSha256 = expectedSha256 },
            }, ProtocolJsonContext.Default.MemoryWriteRequest),
            ProtocolJsonContext.Default.Memory, cancellationToken, beta: MemoryValues.Beta);

    /// <summary>Deletes a memory; with <paramref name="expectedSha256"/>, only if its content still has that hash (else 409).</summary>
    public Task<DeletedResource> DeleteMemoryAsync(string storeId, string memoryId, string? expectedSha256 = null, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoriesDelete, storeId, memoryId), HttpMethod.Delete, $"{StorePath(storeId)}/memories/{Query.Escape(memoryId)}", new Query().With("expected_content_sha256", expectedSha256), null,
            ProtocolJsonContext.Default.DeletedResource, cancellationToken, beta: MemoryValues.Beta);

    public Task<Page<MemoryVersion>> ListVersionsAsync(string storeId, string? memoryId = null, int? limit = null, string? page = null,
        string view = MemoryValues.ViewBasic, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryVersionsList, storeId), HttpMethod.Get, StorePath(storeId) + "/memory_versions",
            new Query().With("memory_id", memoryId).With("limit", limit).With("page", page).With("view", view), null,
            ProtocolJsonContext.Default.PageMemoryVersion, cancellationToken, beta: MemoryValues.Beta);

    public Task<MemoryVersion> GetVersionAsync(string storeId, string versionId, string view = MemoryValues.ViewFull, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryVersionsRetrieve, storeId), HttpMethod.Get, $"{StorePath(storeId)}/memory_versions/{Query.Escape(versionId)}", new Query().With("view", view), null,
            ProtocolJsonContext.Default.MemoryVersion, cancellationToken, beta: MemoryValues.Beta);

    /// <summary>Redacts a version for good (API key only): its content, path and hash become null; reading it still answers.</summary>
    public Task<MemoryVersion> RedactVersionAsync(string storeId, string versionId, CancellationToken cancellationToken = default) =>
        _p.SendJsonAsync(new ApiCall(ApiEndpoints.MemoryVersionsRedact, storeId), HttpMethod.Post, $"{StorePath(storeId)}/memory_versions/{Query.Escape(versionId)}/redact", null, null,
            ProtocolJsonContext.Default.MemoryVersion, cancellationToken, beta: MemoryValues.Beta);
}
