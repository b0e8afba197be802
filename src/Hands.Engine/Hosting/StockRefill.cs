using Microsoft.Extensions.Logging;

namespace Hands.Engine.Hosting;

/// <summary>
/// The background refill of a stock the engine keeps made ahead (<see cref="Storage.BlankDisks"/>,
/// <see cref="Network.SpareNetworks"/>): it tops the stock up at start and whenever woken, starts nothing while a boot or
/// a wake holds it (the last hold let go wakes it), and never throws: a failure is logged and tried again later.
/// </summary>
internal sealed class StockRefill(string what, ILogger logger, TimeProvider time)
{
    /// <summary>How long the refill waits after a failure it did not expect before it tries again.</summary>
    private static readonly TimeSpan RetryAfterFault = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _wanted = new(0, 1);
    private int _holds;

    /// <summary>Whether a boot or a wake holds the refill now.</summary>
    public bool Held => Volatile.Read(ref _holds) > 0;

    /// <summary>Keeps the refill from starting anything until the returned handle is disposed.</summary>
    public IDisposable Hold()
    {
        Interlocked.Increment(ref _holds);
        return new Holding(this);
    }

    /// <summary>Asks for a pass; one pending wake is enough, since a pass re-checks everything.</summary>
    public void Wake()
    {
        if (_wanted.CurrentCount == 0)
        {
            try
            {
                _wanted.Release();
            }
            catch (SemaphoreFullException)
            {
                // Another wake got there first.
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="pass"/> at once and after every wake, until <paramref name="cancellationToken"/>. A pass
    /// is not cancelled (what it makes is let finish, so no child process outlives the engine's stop); it should stop
    /// early when <see cref="Held"/>.
    /// </summary>
    public async Task RunAsync(Func<CancellationToken, Task> pass, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await pass(cancellationToken).ConfigureAwait(false);
                await _wanted.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                logger.LogError(ex, "{What}: the refill failed; trying again in {Seconds} s", what, RetryAfterFault.TotalSeconds);
                try
                {
                    await Task.Delay(RetryAfterFault, time, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private sealed class Holding(StockRefill owner) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0 && Interlocked.Decrement(ref owner._holds) == 0)
            {
                owner.Wake();
            }
        }
    }
}
