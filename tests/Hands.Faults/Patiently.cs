namespace Hands.Faults;

/// <summary>
/// The harness's own calls to the control plane and the engine, made while those are being killed and restarted:
/// a call that fails for want of an answer is tried again every 250 ms, for 60 s at most.
/// </summary>
public static class Patiently
{
    /// <summary>Runs <paramref name="call"/> until it answers (or fails with a status that is not about availability).</summary>
    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, TimeProvider time, CancellationToken cancellationToken, TimeSpan? within = null)
    {
        ArgumentNullException.ThrowIfNull(call);
        ArgumentNullException.ThrowIfNull(time);
        var deadline = time.GetTimestamp() + (long)((within ?? TimeSpan.FromSeconds(60)).TotalSeconds * time.TimestampFrequency);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await call(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (Unavailable(ex) && time.GetTimestamp() < deadline && attempt < 1000)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250), time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <inheritdoc cref="RunAsync{T}"/>
    public static Task RunAsync(Func<CancellationToken, Task> call, TimeProvider time, CancellationToken cancellationToken, TimeSpan? within = null) =>
        RunAsync(async ct =>
        {
            await call(ct).ConfigureAwait(false);
            return true;
        }, time, cancellationToken, within);

    private static bool Unavailable(Exception ex) => ex switch
    {
        HttpRequestException or IOException or TimeoutException => true,
        // Status 0: no answer arrived (a connection refused or dropped by a restart).
        Hands.Common.HandsException h => h.Status is 0 or 408 or 429 or >= 500,
        _ => false,
    };
}
