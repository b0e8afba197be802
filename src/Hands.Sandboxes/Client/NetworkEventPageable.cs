using System.Runtime.CompilerServices;
using Hands.Sandboxes.Models;

namespace Hands.Sandboxes.Client;

/// <summary>
/// The network events of a window as one sequence, fetched a page at a time as it is enumerated (the shape of the Azure
/// SDK's <c>AsyncPageable&lt;T&gt;</c>): enumerate it for the events, or <see cref="AsPages"/> for the pages and their
/// cursors. It stops at the page without <c>next_cursor</c>, at a cursor that repeats, or after <see cref="MaxPages"/>.
/// </summary>
public sealed class NetworkEventPageable : IAsyncEnumerable<NetworkEvent>
{
    /// <summary>The most pages one enumeration fetches (500 events each: five million events).</summary>
    public const int MaxPages = 10_000;

    private readonly Func<string?, CancellationToken, Task<NetworkEventsResponse>> _fetch;
    private readonly string? _firstCursor;

    /// <summary>A pageable over <paramref name="fetch"/> (one page for a cursor, null for the first), starting at <paramref name="firstCursor"/>.</summary>
    public NetworkEventPageable(Func<string?, CancellationToken, Task<NetworkEventsResponse>> fetch, string? firstCursor = null)
    {
        _fetch = fetch;
        _firstCursor = firstCursor;
    }

    /// <summary>The pages in order, starting at <paramref name="continuationToken"/> (a <c>next_cursor</c>) when given.</summary>
    public async IAsyncEnumerable<NetworkEventsResponse> AsPages(string? continuationToken = null, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var cursor = continuationToken ?? _firstCursor;
        for (var page = 0; page < MaxPages; page++)
        {
            var response = await _fetch(cursor, cancellationToken).ConfigureAwait(false);
            yield return response;
            if (string.IsNullOrEmpty(response.NextCursor) || response.NextCursor == cursor)
            {
                yield break;
            }

            cursor = response.NextCursor;
        }
    }

    /// <inheritdoc />
    public async IAsyncEnumerator<NetworkEvent> GetAsyncEnumerator(CancellationToken cancellationToken = default)
    {
        await foreach (var page in AsPages(cancellationToken: cancellationToken).ConfigureAwait(false))
        {
            foreach (var observed in page.Events)
            {
                yield return observed;
            }
        }
    }
}
