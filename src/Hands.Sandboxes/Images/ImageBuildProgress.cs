namespace Hands.Sandboxes.Images;

/// <summary>What an image build is doing: a step starting (<c>[Step/Steps] Text</c>), or a line a <c>run</c> step printed.</summary>
/// <param name="Step">The step, from 1; the builder sandbox, the file's steps, the snapshot and the registration each count.</param>
/// <param name="Steps">How many steps the build has in all.</param>
/// <param name="Text">The step's description, or the output line.</param>
/// <param name="IsOutput">Whether <paramref name="Text"/> is a line of a <c>run</c> step's output.</param>
public sealed record ImageBuildProgress(int Step, int Steps, string Text, bool IsOutput);
