namespace Hands.Sandboxes.Images;

/// <summary>How an image build ended: registered, or stopped at a <c>run</c> step that failed (then nothing is registered).</summary>
/// <param name="FailedStep">The step that exited non-zero; null when the image was registered.</param>
/// <param name="ExitCode">That step's exit code (128 + the signal when it was killed); 0 on success.</param>
public sealed record ImageBuildResult(ImageStep? FailedStep, int ExitCode)
{
    /// <summary>Whether the image was registered.</summary>
    public bool Registered => FailedStep is null;
}
