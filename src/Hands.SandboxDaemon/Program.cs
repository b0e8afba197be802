using System.Runtime.Versioning;
using Hands.SandboxDaemon;

[assembly: SupportedOSPlatform("linux")]

return await SandboxDaemonHost.RunAsync(args).ConfigureAwait(false);
